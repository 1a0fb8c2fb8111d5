import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import type { PrefixFingerprint } from '../observe/prefix-fingerprint.js'
import { ResponseObserver } from '../observe/response-observer.js'
import { ResponseRelay } from '../relay/response-relay.js'
import { readSessionFields } from '../session/body-fields.js'
import type { Session, SessionResolver } from '../session/resolve-session.js'
import type { UpstreamHeaders } from '../upstream/request-headers.js'
import type { UpstreamTarget } from '../upstream/upstream-path.js'
import type { Admission } from './admission.js'
import { afterWrite, tapStreamedBody } from './body-tap.js'
import { hasBody, isPlainJson, limitedBody, readRequestBody } from './client-body.js'
import { Exchange, type ExchangeDeps } from './exchange.js'

export interface HttpEntryDeps {
  config: GatewayConfig
  target: UpstreamTarget
  admission: Admission
  exchanges: ExchangeDeps
  sessions: SessionResolver
  upstream: Dispatcher
  upstreamHeaders: UpstreamHeaders
  logger: Logger
}

export type Forwarder = (req: IncomingMessage, res: ServerResponse) => void

type RequestBody = Buffer | IncomingMessage | AsyncIterable<Buffer> | null

/**
 * Where an HTTP request to `/v1/*` enters, every method: admission → session → upstream →
 * relay → observe. Bodies are not parsed: they go to undici as the client's stream, or, when
 * the session depends on a JSON body's fields, as the one buffer they were read into, so
 * either way byte for byte.
 */
export function createForwarder (deps: HttpEntryDeps): Forwarder {
  const { config, admission, sessions, logger } = deps
  const { bodyLimitBytes } = config.server

  return function forward (req: IncomingMessage, res: ServerResponse): void {
    const exchange = new Exchange(deps.exchanges, 'http', req)
    // Draining: this request is served, and its connection closed after it.
    if (!deps.exchanges.drain.accepting) res.shouldKeepAlive = false
    const admitted = admission.admit(req, 'http')
    if (admitted instanceof GatewayError) {
      exchange.refuse(admitted, res)
      return
    }
    // Cache analysis reads a plain JSON model call's prefix as its bytes pass, whichever way they go.
    const tap = hasBody(req) && isPlainJson(req) ? exchange.tapRequestBody() : undefined
    const onChunk = tap === undefined ? undefined : afterWrite(tap)
    const streamedBody = !hasBody(req) ? null : req.headers['content-length'] === undefined ? limitedBody(req, bodyLimitBytes, onChunk) : req
    if (admitted.sessionFromHeader !== undefined) {
      // The client decided: the body is never looked at.
      dispatch(deps, exchange, req, res, admitted.upstreamPath, admitted.sessionFromHeader, streamedBody, tap)
      return
    }
    if (streamedBody === null || !config.session.readBody || !isPlainJson(req)) {
      dispatch(deps, exchange, req, res, admitted.upstreamPath, sessions.fromConnection(req.socket), streamedBody, tap)
      return
    }
    readRequestBody(req, bodyLimitBytes).then(async (body) => {
      const session = await sessions.fromBody(readSessionFields(body), req.socket)
      if (res.destroyed) return // the client left while its body was read
      dispatch(deps, exchange, req, res, admitted.upstreamPath, session, body)
      if (tap !== undefined) afterWrite(tap)(body)
    }).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return
      if (!(err instanceof GatewayError)) logger.error({ err }, 'deciding a session from the request body failed')
      exchange.refuse(err instanceof GatewayError ? err : errors.internal(), res)
    })
  }
}

function dispatch (deps: HttpEntryDeps, exchange: Exchange, req: IncomingMessage, res: ServerResponse, path: string, session: Session, body: RequestBody, tap?: PrefixFingerprint): void {
  exchange.admit(session, () => res.destroy())
  if (tap !== undefined && body === req) tapStreamedBody(req, tap)
  // Only model calls carry response ids and usage worth the observer's copy of the body.
  const observer = exchange.isModelCall ? new ResponseObserver(exchange) : undefined
  // One upstream attempt, one client span (when traced): a retry elsewhere would start another.
  const attempt = exchange.startAttempt(deps.target.origin, exchange.method, path)
  deps.upstream.dispatch({
    origin: deps.target.origin,
    path,
    method: exchange.method as Dispatcher.HttpMethod,
    headers: deps.upstreamHeaders(req.rawHeaders, session.id, attempt?.traceHeaders),
    // undici's core streams async iterables too; its dispatch typings only list streams.
    body: body as Dispatcher.DispatchOptions['body']
  }, new ResponseRelay(res, exchange.startedAt, (outcome) => {
    attempt?.end(outcome)
    exchange.end(outcome)
  }, observer))
}
