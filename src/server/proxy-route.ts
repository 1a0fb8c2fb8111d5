import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import { logExchange } from '../observe/request-log.js'
import { ResponseRelay, sendGatewayError, type RelayOutcome } from '../relay/response-relay.js'
import type { SessionResolver } from '../session/resolve-session.js'
import { upstreamRequestHeaders } from '../upstream/request-headers.js'
import { hasDotSegment, upstreamPath } from '../upstream/upstream-path.js'

export interface ProxyDeps {
  config: GatewayConfig
  sessions: SessionResolver
  upstream: Dispatcher
  logger: Logger
  /** Proxied exchanges under way; shutdown reports how many it had to cut. */
  inFlight: { count: number }
}

/**
 * `/v1/*`, every method: request → session → upstream → relay → log. Bodies are not parsed:
 * the client's stream is handed to undici as is, so it is forwarded byte for byte.
 */
export async function proxyRoutes (app: FastifyInstance, deps: ProxyDeps): Promise<void> {
  // Leave every body unread for the relay, whatever its type (JSON, multipart, none).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  const forward = createForwarder(deps)
  const handler = (request: { raw: IncomingMessage }, reply: { raw: ServerResponse, hijack (): void }): void => {
    reply.hijack()
    forward(request.raw, reply.raw)
  }
  app.all('/v1', handler)
  app.all('/v1/*', handler)
}

export function createForwarder ({ config, sessions, upstream, logger, inFlight }: ProxyDeps) {
  const { origin } = config.upstream
  const defaultOriginator = config.session.originator

  return function forward (req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now()
    const target = req.url ?? '/'
    const path = upstreamPath(target, config.upstream)
    if (path === undefined) {
      sendGatewayError(res, hasDotSegment(target) ? errors.badPath() : errors.notFound(req.method ?? 'GET', pathOf(target)))
      return
    }

    let session
    try {
      session = sessions.resolve({ headers: req.headers, connection: req.socket })
    } catch (err) {
      sendGatewayError(res, err instanceof GatewayError ? err : errors.internal())
      return
    }

    const method = req.method ?? 'GET'
    inFlight.count++
    const onEnd = (outcome: RelayOutcome): void => {
      inFlight.count--
      logExchange(logger, {
        method,
        path: pathOf(target),
        session: session.id,
        sessionSource: session.source,
        durationMs: performance.now() - startedAt,
        outcome
      })
    }
    const relay = new ResponseRelay(res, startedAt, onEnd)
    upstream.dispatch({
      origin,
      path,
      method: method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(req.rawHeaders, session.id, defaultOriginator),
      body: hasBody(req) ? req : null
    }, relay)
  }
}

/** A request has a body when it says so in its framing headers (RFC 9112 §6.3). */
function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function pathOf (target: string): string {
  const queryAt = target.indexOf('?')
  return queryAt === -1 ? target : target.slice(0, queryAt)
}
