import type { IncomingHttpHeaders } from 'node:http'
import { errors } from '../errors.js'
import { isSaneSessionId, newSessionId } from './session-id.js'

/** How a request's session was decided, in order of precedence. */
export type SessionSource = 'header' | 'connection'

export interface Session {
  id: string
  source: SessionSource
}

/** What the resolver may look at: the request's headers and the connection it came on. */
export interface SessionRequest {
  headers: IncomingHttpHeaders
  /** The client's TCP connection; any object that lives exactly as long as it. */
  connection: object
}

/**
 * Decides which session a request belongs to:
 *  1. the client's own `session-id` (or older `session_id`) header, when sane;
 *  2. otherwise the session bound to the client's connection, made on its first request.
 * Throws the `invalid_session_id` GatewayError for an insane client id: it is never forwarded.
 */
export class SessionResolver {
  // Keyed weakly by the socket, so a connection's session goes when the connection does.
  readonly #byConnection = new WeakMap<object, string>()

  resolve ({ headers, connection }: SessionRequest): Session {
    const fromHeader = clientSessionHeader(headers)
    if (fromHeader !== undefined) return { id: fromHeader, source: 'header' }
    let id = this.#byConnection.get(connection)
    if (id === undefined) {
      id = newSessionId()
      this.#byConnection.set(connection, id)
    }
    return { id, source: 'connection' }
  }
}

/**
 * The client's session id: `session-id` wins over `session_id` when both are sent (codex
 * moved to the hyphen because proxies drop underscores). An empty header counts as absent.
 */
function clientSessionHeader (headers: IncomingHttpHeaders): string | undefined {
  for (const name of ['session-id', 'session_id'] as const) {
    const value = headers[name]
    if (value === undefined || value === '') continue
    // Node joins repeated unknown headers with ", ", which the sanity check refuses.
    if (typeof value !== 'string' || !isSaneSessionId(value)) throw errors.invalidSessionId(name)
    return value
  }
  return undefined
}
