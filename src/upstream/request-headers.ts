import { connectionTokens, isHopByHop } from '../http/hop-by-hop.js'

/** Headers the gateway sets itself or that must not reach the upstream as the client sent them. */
const ALWAYS_REPLACED = [
  'host', // undici sets the upstream's
  'expect', // undici refuses it; Node has already answered 100-continue to the client
  'session-id',
  'session_id'
]

/** Where a client puts its key: OpenAI's header and Azure's (clients written for both send it both ways). */
const CLIENT_KEY_HEADERS = ['authorization', 'api-key']

export interface UpstreamHeaderRules {
  /** `originator` sent when the client sent none. */
  defaultOriginator: string
  /** Managed mode: the key sent upstream instead of the client's `authorization`. */
  upstreamApiKey?: string
  /** Managed mode for an upstream without a key: the client's authorization and api-key (a gateway key) are dropped. */
  dropClientAuthorization?: boolean
  /**
   * Extra headers from config; they replace a client's header of the same name. `{session}` in
   * a value is replaced by the session id (session-affine routers key on such a header).
   */
  extra?: Record<string, string>
}

const SESSION_PLACEHOLDER = '{session}'

/**
 * `traceHeaders`: the upstream attempt's `traceparent`/`tracestate` when tracing is on; they
 * replace the client's. Without them the client's trace headers pass as any other header.
 */
export type UpstreamHeaders = (rawHeaders: string[], sessionId: string, traceHeaders?: string[]) => string[]

/**
 * Builds the function that makes an upstream request's headers, as a flat `[name, value, …]`
 * list: the client's own, in order and spelling, less hop-by-hop ones and those the gateway
 * sets, plus the session under both spellings codex has used, an `originator` when the client
 * sent none, and the configured extras. Everything that depends only on config is done here,
 * once, not per request.
 */
export function upstreamHeaderRules ({ defaultOriginator, upstreamApiKey = '', dropClientAuthorization = false, extra = {} }: UpstreamHeaderRules): UpstreamHeaders {
  const replaced = new Set([...ALWAYS_REPLACED, ...Object.keys(extra)])
  // Managed mode: the client's key is a gateway key, for the gateway only.
  if (dropClientAuthorization || upstreamApiKey !== '') for (const name of CLIENT_KEY_HEADERS) replaced.add(name)
  const added: string[] = []
  const templated: string[] = []
  for (const [name, value] of Object.entries(extra)) {
    // In managed mode the managed key is the one authorization sent: an extra one would make two.
    if (upstreamApiKey !== '' && name.toLowerCase() === 'authorization') continue
    if (value.includes(SESSION_PLACEHOLDER)) templated.push(name, value)
    else added.push(name, value)
  }
  if (upstreamApiKey !== '') added.push('authorization', `Bearer ${upstreamApiKey}`)
  const originatorIsExtra = replaced.has('originator')

  return function upstreamRequestHeaders (rawHeaders, sessionId, traceHeaders) {
    const out: string[] = []
    let dropAlso: Set<string> | undefined
    let hasOriginator = originatorIsExtra
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string
      const lower = name.toLowerCase()
      if (lower === 'connection') {
        dropAlso = connectionTokens(rawHeaders[i + 1], dropAlso)
        continue
      }
      if (isHopByHop(lower) || replaced.has(lower)) continue
      if (traceHeaders !== undefined && (lower === 'traceparent' || lower === 'tracestate')) continue
      if (lower === 'originator') hasOriginator = true
      out.push(name, rawHeaders[i + 1] as string)
    }
    if (dropAlso !== undefined) dropListedByConnection(out, dropAlso)
    out.push('session_id', sessionId, 'session-id', sessionId)
    if (!hasOriginator) out.push('originator', defaultOriginator)
    for (let i = 0; i < added.length; i++) out.push(added[i]!)
    for (let i = 0; i < templated.length; i += 2) out.push(templated[i]!, templated[i + 1]!.replaceAll(SESSION_PLACEHOLDER, sessionId))
    if (traceHeaders !== undefined) for (let i = 0; i < traceHeaders.length; i++) out.push(traceHeaders[i]!)
    return out
  }
}

function dropListedByConnection (headers: string[], names: Set<string>): void {
  let write = 0
  for (let read = 0; read < headers.length; read += 2) {
    const name = headers[read] as string
    if (names.has(name.toLowerCase())) continue
    headers[write++] = name
    headers[write++] = headers[read + 1] as string
  }
  headers.length = write
}
