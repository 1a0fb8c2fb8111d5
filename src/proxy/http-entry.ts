import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import { hasBody } from '../http/request-framing.js'
import { afterWrite } from '../observe/idle-reading.js'
import type { Logger } from '../observe/logger.js'
import type { PrefixFingerprint } from '../observe/prefix-fingerprint.js'
import { ResponseObserver } from '../observe/response-observer.js'
import type { AttemptSpan } from '../observe/tracing.js'
import { ResponseRelay } from '../relay/response-relay.js'
import { hasLineage, readSessionFields, type SessionFields } from '../session/body-fields.js'
import type { Session, SessionResolver } from '../session/resolve-session.js'
import { lineageOfTarget } from '../session/target-lineage.js'
import { pathOf, upstreamPath } from '../upstream/upstream-path.js'
import type { Upstream, UpstreamSet } from '../upstream/upstream-set.js'
import type { Admission, Admitted } from './admission.js'
import { spannedGate } from './attempt-span.js'
import { UpstreamAttempts, type AttemptDeps } from './attempts.js'
import { tapReadBody, tapStreamedBody } from './body-tap.js'
import { isPlainJson, limitedBody, readRequestBody } from './client-body.js'
import { Exchange, type ExchangeDeps } from './exchange.js'
import { ALWAYS, replayableBody, UNSENT, type ReplayableBody } from './replay-body.js'

export interface HttpEntryDeps {
  config: GatewayConfig
  admission: Admission
  exchanges: ExchangeDeps
  sessions: SessionResolver
  /** The undici pool every upstream request goes through (one Agent, a pool per origin). */
  upstream: Dispatcher
  upstreams: UpstreamSet
  attempts: AttemptDeps
  logger: Logger
}

export type Forwarder = (req: IncomingMessage, res: ServerResponse) => void

type RequestBody = Buffer | IncomingMessage | AsyncIterable<Buffer> | null

/**
 * `Expect: 100-continue` from an HTTP/1.1 client: Node, which has the gateway's
 * `checkContinue` listener, did not answer it. (Other expectations got their 417 before.)
 */
function expectsContinue (req: IncomingMessage): boolean {
  return req.headers.expect !== undefined && req.httpVersionMinor === 1
}

/** A body up to this size is read whole before it goes upstream, whatever decided the session. */
const WHOLE_BODY_BYTES = 64 * 1024

/**
 * Where an HTTP request to `/v1/*` enters, every method: admission → session → upstream →
 * relay → observe. Bodies are not parsed: they go to undici as the client's stream, or, when
 * small or when the session depends on a JSON body's fields, as the one buffer they were read
 * into, so either way byte for byte.
 */
export function createForwarder (deps: HttpEntryDeps): Forwarder {
  const { config, admission, sessions } = deps
  const { bodyLimitBytes } = config.server

  return function forward (req: IncomingMessage, res: ServerResponse): void {
    const exchange = new Exchange(deps.exchanges, 'http', req, res)
    // Draining: this request is served, and its connection closed after it.
    if (!deps.exchanges.drain.accepting) res.shouldKeepAlive = false
    const admitted = admission.admit(req, 'http')
    if (admitted instanceof GatewayError) {
      exchange.refuse(admitted, res)
      return
    }
    // Admitted: now the client may send the body it held back (a refusal above went out
    // without it, and closed the connection, see closeIfBodyUnread).
    if (expectsContinue(req)) res.writeContinue()
    // Cache analysis reads a plain JSON model call's prefix as its bytes pass, whichever way they go.
    const tap = hasBody(req) && isPlainJson(req) ? exchange.tapRequestBody() : undefined
    const single = deps.upstreams.single
    if (single === undefined) {
      routeRequest(deps, exchange, req, res, admitted, tap).catch((err: unknown) => refuseAfterBody(deps, exchange, res, err))
      return
    }
    const streamedBody = !hasBody(req) ? null : req.headers['content-length'] === undefined ? limitedBody(req, bodyLimitBytes, tap === undefined ? undefined : afterWrite(tap)) : req
    if (admitted.sessionFromHeader !== undefined) {
      // The client decided: the body is never looked at.
      dispatchDecided(deps, single, exchange, req, res, admitted.upstreamPath, admitted.sessionFromHeader, streamedBody, tap)
      return
    }
    if (streamedBody === null || !config.session.readBody || !isPlainJson(req)) {
      dispatchDecided(deps, single, exchange, req, res, admitted.upstreamPath, sessions.fromConnection(req.socket), streamedBody, tap)
      return
    }
    readRequestBody(req, bodyLimitBytes).then(async (body) => {
      const session = await sessions.fromBody(readSessionFields(body), req.socket, exchange)
      if (res.destroyed) return exchange.endClientGone() // the client left while its session was decided
      dispatch(deps, single, exchange, req, res, admitted.upstreamPath, session, body, tap)
    }).catch((err: unknown) => refuseAfterBody(deps, exchange, res, err))
  }
}

/**
 * The session is decided without the body. A small body (`content-length` up to
 * WHOLE_BODY_BYTES) is read whole first and sent as one buffer: it has nearly always arrived
 * with the headers, the upstream waits for all of it anyway, and piping the client's stream
 * through undici cost more CPU than sending a buffer (README, Sessions: ~15 % per request for
 * calls with `session-id`). A larger or chunked body is streamed as it arrives.
 */
function dispatchDecided (deps: HttpEntryDeps, upstream: Upstream, exchange: Exchange, req: IncomingMessage, res: ServerResponse, path: string, session: Session, streamedBody: RequestBody, tap: PrefixFingerprint | undefined): void {
  if (streamedBody !== req || !(Number(req.headers['content-length']) <= WHOLE_BODY_BYTES)) {
    dispatch(deps, upstream, exchange, req, res, path, session, streamedBody, tap)
    return
  }
  readRequestBody(req, deps.config.server.bodyLimitBytes).then((body) => {
    if (res.destroyed) return exchange.endClientGone() // the client left while its body was read
    dispatch(deps, upstream, exchange, req, res, path, session, body, tap)
  }).catch((err: unknown) => refuseAfterBody(deps, exchange, res, err))
}

/** Reading the body (or deciding the session) failed before anything went upstream. */
function refuseAfterBody (deps: HttpEntryDeps, exchange: Exchange, res: ServerResponse, err: unknown): void {
  // The client left while its body was read: its abort is the reading's failure.
  if (res.destroyed) return exchange.endClientGone()
  if (res.headersSent) return
  if (!(err instanceof GatewayError)) deps.logger.error({ err }, 'deciding a session from the request body failed')
  exchange.refuse(err instanceof GatewayError ? err : errors.internal(), res)
}

/** One upstream: straight to it, the body streamed once, as before routing existed. */
function dispatch (deps: HttpEntryDeps, upstream: Upstream, exchange: Exchange, req: IncomingMessage, res: ServerResponse, path: string, session: Session, body: RequestBody, tap?: PrefixFingerprint): void {
  exchange.admit(session, () => res.destroy())
  exchange.upstream = upstream.name
  exchange.attempts = 1
  if (tap !== undefined) tapBody(tap, req, body)
  // One upstream attempt, one client span (when traced).
  const attempt = exchange.startAttempt(upstream.target.origin, exchange.method, path)
  // The exchange's end ends the attempt's span too: later, when the usage of a compressed
  // answer is still being inflated, so the span the GenAI facts go on is still open for them.
  deps.upstream.dispatch(upstreamRequest(upstream, exchange, req, path, session, body, attempt),
    new ResponseRelay(res, exchange.startedAt, (outcome) => exchange.end(outcome), observerFor(exchange)))
}

/**
 * Several upstreams: the session decides the order (its bound upstream, then rendezvous), and
 * the body is kept (up to `routing.replay_body_bytes`) so a request that fails before any byte
 * of an answer reached the client can go to the next upstream.
 */
async function routeRequest (deps: HttpEntryDeps, exchange: Exchange, req: IncomingMessage, res: ServerResponse, admitted: Admitted, tap: PrefixFingerprint | undefined): Promise<void> {
  const { session, body, lineage: fields, lineageInPath } = await sessionAndBody(deps, exchange, req, admitted)
  // The group where the response or conversation it continues was made (kept with several
  // groups), read while the session's binding is: with Redis, two reads in flight at once.
  const originRead = deps.sessions.originOf(session, fields)
  const boundName = await deps.sessions.upstreamOf(session.id)
  const origin = await originRead
  if (res.destroyed) return exchange.endClientGone() // the client left while its body or session was read
  // A session its header decided is held to lineage only where its response's group is known
  // and still configured (one removed since holds the response nowhere it could go).
  const lineage = session.source === 'previous_response' || session.source === 'conversation' || (session.source === 'header' && origin !== undefined && deps.upstreams.hasGroup(origin))
  const plan = deps.upstreams.plan(session.id, boundName, lineage, origin)
  if (plan.refusal !== undefined) {
    exchange.refuse(plan.refusal, res)
    return
  }
  exchange.admit(session, () => res.destroy())
  const observer = observerFor(exchange)
  const clientTarget = req.url ?? '/'
  const attempts = new UpstreamAttempts(deps.attempts, exchange, {
    order: plan.order,
    boundName,
    rebindReason: plan.rebindReason,
    // Reading (or cancelling, deleting) an older response where it was made moves nothing.
    keepsBinding: lineageInPath && plan.rebindReason === 'lineage',
    replayable: body.replayable,
    clientGone: () => res.destroyed
  }, (upstream, gate) => {
    const path = upstreamPath(clientTarget, upstream.target)! // admission checked the target
    // Each attempt its own client span (when traced): a failover shows as several.
    const attempt = exchange.startAttempt(upstream.target.origin, exchange.method, path)
    // A retried attempt's span ends at its retry (spannedGate); the last one's with the exchange (as in dispatch).
    deps.upstream.dispatch(upstreamRequest(upstream, exchange, req, path, session, body.body, attempt),
      new ResponseRelay(res, exchange.startedAt, (outcome) => exchange.end(outcome), observer, attempt === undefined ? gate : spannedGate(gate, attempt, exchange.startedAt)))
  })
  if (tap !== undefined) tapBody(tap, req, body.body)
  attempts.next()
}

/** The cache tap on a request's body: a buffer read whole once, or the client's stream as it passes. */
function tapBody (tap: PrefixFingerprint, req: IncomingMessage, body: RequestBody): void {
  if (Buffer.isBuffer(body)) tapReadBody(tap, body)
  else if (body === req) tapStreamedBody(req, tap)
  // A chunked body on one upstream shows its chunks to the tap itself (limitedBody, in
  // createForwarder); one routed past the replay limit (read in part, then streamed) has no fingerprint.
}

/**
 * The session, and the body read once: for its lineage fields when they decide, and to be
 * replayed; with the lineage fields a session may have been found by.
 */
async function sessionAndBody (deps: HttpEntryDeps, exchange: Exchange, req: IncomingMessage, admitted: Admitted): Promise<SessionAndBody> {
  const { server, session: sessionSettings, routing } = deps.config
  if (admitted.sessionFromHeader === undefined && hasBody(req) && sessionSettings.readBody && isPlainJson(req)) {
    const body = await readRequestBody(req, server.bodyLimitBytes)
    const fields = readSessionFields(body)
    // Read whole to decide the session; past the replay limit, sent again only as a streamed
    // body would be: when its attempt failed before connecting, nothing of it sent.
    const replayable = { body, replayable: body.length <= routing.replayBodyBytes ? ALWAYS : UNSENT }
    if (!hasLineage(fields)) return await sessionOfTarget(deps.sessions, req, replayable)
    return { session: await deps.sessions.fromBody(fields, req.socket, exchange), body: replayable, lineage: fields, lineageInPath: false }
  }
  const body = await replayableBody(req, routing.replayBodyBytes, server.bodyLimitBytes)
  if (admitted.sessionFromHeader !== undefined) return { session: admitted.sessionFromHeader, body, lineage: headerSessionLineage(deps, req, body), lineageInPath: false }
  return await sessionOfTarget(deps.sessions, req, body)
}

/**
 * A session its header decided (codex) is not looked up by its body, but with upstreams in
 * several groups the response or conversation that body continues may have been made in a
 * group the session has since left (a failover): the body, read for replay, is read for them.
 */
function headerSessionLineage (deps: HttpEntryDeps, req: IncomingMessage, body: ReplayableBody): SessionFields | undefined {
  if (!deps.sessions.keepsOrigins || !deps.config.session.readBody || !Buffer.isBuffer(body.body) || !isPlainJson(req)) return undefined
  const fields = readSessionFields(body.body)
  return fields.previousResponseId !== undefined || fields.conversation !== undefined ? fields : undefined
}

interface SessionAndBody {
  session: Session
  body: ReplayableBody
  /** The lineage (body fields, or what the path names) the session may have been found by. */
  lineage: SessionFields | undefined
  /** The lineage is what the path names (a stored response or conversation read, cancelled, deleted). */
  lineageInPath: boolean
}

/**
 * A request without a session header or lineage in its body: a target naming a stored response
 * or a conversation goes to the session (so the upstream) that holds it; anything else is the
 * connection's. Several upstreams only: with one, every request reaches the one that holds it.
 */
async function sessionOfTarget (sessions: SessionResolver, req: IncomingMessage, body: ReplayableBody): Promise<SessionAndBody> {
  const named = lineageOfTarget(pathOf(req.url ?? '/'))
  if (named === undefined) return { session: sessions.fromConnection(req.socket), body, lineage: undefined, lineageInPath: false }
  return { session: await sessions.fromTarget(named, req.socket), body, lineage: named, lineageInPath: true }
}

function upstreamRequest (upstream: Upstream, exchange: Exchange, req: IncomingMessage, path: string, session: Session, body: RequestBody, attempt: AttemptSpan | undefined): Dispatcher.DispatchOptions {
  return {
    origin: upstream.target.origin,
    path,
    method: exchange.method as Dispatcher.HttpMethod,
    headers: upstream.headers(req.rawHeaders, session.id, attempt?.traceHeaders),
    // undici's core streams async iterables too; its dispatch typings only list streams.
    body: body as Dispatcher.DispatchOptions['body']
  }
}

/**
 * Only model calls carry response ids and usage worth the observer's copy of the body; and,
 * when origins are kept, a conversation's creation its id.
 */
function observerFor (exchange: Exchange): ResponseObserver | undefined {
  const api = exchange.modelApi
  if (api !== undefined) return new ResponseObserver(exchange, api)
  return exchange.createsConversation ? new ResponseObserver(exchange) : undefined
}
