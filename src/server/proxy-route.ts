import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import type { TokenUsage } from '../session/session-usage.js'
import { logExchange, logRefusal } from '../observe/request-log.js'
import { ResponseObserver } from '../observe/response-observer.js'
import { routeLabel } from '../observe/route-label.js'
import { ResponseRelay, sendGatewayError, type RelayOutcome } from '../relay/response-relay.js'
import { readSessionFields } from '../session/body-fields.js'
import type { Session, SessionResolver } from '../session/resolve-session.js'
import { NO_TOKENS } from '../session/session-usage.js'
import { limitedBody, readRequestBody } from '../upstream/read-body.js'
import type { UpstreamHeaders } from '../upstream/request-headers.js'
import type { ClientAuth } from './client-auth.js'
import { hasDotSegment, pathOf, upstreamPath } from '../upstream/upstream-path.js'

export interface ProxyDeps {
  config: GatewayConfig
  sessions: SessionResolver
  upstream: Dispatcher
  logger: Logger
  metrics: GatewayMetrics
  auth: ClientAuth
  upstreamHeaders: UpstreamHeaders
  /** Proxied exchanges under way; shutdown reports how many it had to cut. */
  inFlight: { count: number }
  /** False once shutdown has begun: new requests get 503 and their connection closed. */
  accepting: () => boolean
}

/**
 * `/v1/*`, every method: request → session → upstream → relay → observe. Bodies are not
 * parsed: they go to undici as the client's stream, or, when the session depends on a JSON
 * body's fields, as the one buffer they were read into, so either way byte for byte.
 */
export async function proxyRoutes (app: FastifyInstance, { forward }: { forward: Forwarder }): Promise<void> {
  // Leave every body unread for the relay, whatever its type (JSON, multipart, none).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  const handler = (request: { raw: IncomingMessage }, reply: { raw: ServerResponse, hijack (): void }): void => {
    reply.hijack()
    forward(request.raw, reply.raw)
  }
  app.all('/v1', handler)
  app.all('/v1/*', handler)
}

export type Forwarder = (req: IncomingMessage, res: ServerResponse) => void

/** True for the request targets the forwarder serves: `/v1` and everything under it. */
export function isProxyTarget (url: string): boolean {
  return url.startsWith('/v1') && (url.length === 3 || url[3] === '/' || url[3] === '?')
}

export function createForwarder ({ config, sessions, upstream, logger, metrics, auth, upstreamHeaders, inFlight, accepting }: ProxyDeps): Forwarder {
  const { origin } = config.upstream
  const { bodyLimitBytes } = config.server

  function dispatch (req: IncomingMessage, res: ServerResponse, path: string, session: Session, body: Buffer | IncomingMessage | AsyncIterable<Buffer> | null, startedAt: number): void {
    const method = req.method ?? 'GET'
    const clientPath = pathOf(req.url ?? '/')
    let tokens: TokenUsage | undefined
    inFlight.count++
    metrics.exchangeStarted('http')
    const onEnd = (outcome: RelayOutcome): void => {
      inFlight.count--
      const durationMs = performance.now() - startedAt
      metrics.exchangeEnded({
        route: routeLabel(clientPath),
        method,
        status: outcome.status,
        transport: 'http',
        ttfbMs: outcome.ttfbMs,
        durationMs,
        endedBy: outcome.endedBy,
        failureKind: outcome.failure?.kind
      })
      // A compressed JSON answer's usage is known only once inflated; it is recorded then.
      if (observer?.inflating !== true) sessions.recordUsage(session.id, tokens ?? NO_TOKENS)
      logExchange(logger, { method, path: clientPath, session: session.id, sessionSource: session.source, durationMs, outcome })
    }
    // Only model calls carry response ids and usage worth the observer's copy of the body.
    const observer = method === 'POST' && (clientPath === '/v1/responses' || clientPath === '/v1/chat/completions')
      ? new ResponseObserver({
        onResponseId: (id) => sessions.learnResponse(session.id, id),
        onUsage: (usage) => {
          tokens = usage
          metrics.tokensUsed(usage)
        },
        onInflated: () => sessions.recordUsage(session.id, tokens ?? NO_TOKENS)
      })
      : undefined
    upstream.dispatch({
      origin,
      path,
      method: method as Dispatcher.HttpMethod,
      headers: upstreamHeaders(req.rawHeaders, session.id),
      // undici's core streams async iterables too; its dispatch typings only list streams.
      body: body as Dispatcher.DispatchOptions['body']
    }, new ResponseRelay(res, startedAt, onEnd, observer))
  }

  /** Answers with the gateway's own error; nothing goes upstream. Logged and counted too. */
  function refuse (req: IncomingMessage, res: ServerResponse, error: GatewayError, startedAt: number): void {
    sendGatewayError(res, error)
    const method = req.method ?? 'GET'
    const path = pathOf(req.url ?? '/')
    const durationMs = performance.now() - startedAt
    metrics.exchangeEnded({ route: routeLabel(path), method, status: error.status, transport: 'http', ttfbMs: -1, durationMs, endedBy: 'gateway' }, false)
    logRefusal(logger, { method, path, status: error.status, code: error.code, durationMs })
  }

  return function forward (req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now()
    if (!accepting()) {
      res.shouldKeepAlive = false
      refuse(req, res, errors.shuttingDown(), startedAt)
      return
    }
    const target = req.url ?? '/'
    const path = upstreamPath(target, config.upstream)
    if (path === undefined) {
      refuse(req, res, hasDotSegment(target) ? errors.badPath() : errors.notFound(req.method ?? 'GET', pathOf(target)), startedAt)
      return
    }
    const denied = auth.check(req.headers)
    if (denied !== undefined) {
      refuse(req, res, denied, startedAt)
      return
    }
    if (Number(req.headers['content-length']) > bodyLimitBytes) {
      refuse(req, res, errors.bodyTooLarge(bodyLimitBytes), startedAt)
      return
    }

    let fromHeader
    try {
      fromHeader = sessions.fromHeaders(req.headers)
    } catch (err) {
      refuse(req, res, err instanceof GatewayError ? err : errors.internal(), startedAt)
      return
    }
    const streamedBody = !hasBody(req) ? null : req.headers['content-length'] === undefined ? limitedBody(req, bodyLimitBytes) : req
    if (fromHeader !== undefined) {
      // The client decided: the body is never looked at.
      dispatch(req, res, path, fromHeader, streamedBody, startedAt)
      return
    }
    if (streamedBody === null || !config.session.readBody || !isPlainJson(req)) {
      dispatch(req, res, path, sessions.fromConnection(req.socket), streamedBody, startedAt)
      return
    }
    readRequestBody(req, bodyLimitBytes).then(async (body) => {
      const session = await sessions.fromBody(readSessionFields(body), req.socket)
      if (res.destroyed) return // the client left while its body was read
      dispatch(req, res, path, session, body, startedAt)
    }).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return
      if (err instanceof GatewayError) {
        refuse(req, res, err, startedAt)
      } else {
        logger.error({ err }, 'deciding a session from the request body failed')
        refuse(req, res, errors.internal(), startedAt)
      }
    })
  }
}

/** A request has a body when it says so in its framing headers (RFC 9112 §6.3). */
function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** JSON the gateway can read as is: a JSON media type and no content-encoding. */
function isPlainJson (req: IncomingMessage): boolean {
  const type = req.headers['content-type']
  if (type === undefined || !type.toLowerCase().includes('json')) return false
  const encoding = req.headers['content-encoding']
  return encoding === undefined || encoding.toLowerCase() === 'identity'
}
