import type { IncomingMessage, ServerResponse } from 'node:http'
import type { GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import { NO_UPSTREAM, type GatewayMetrics, type Transport } from '../observe/metrics.js'
import { logExchange } from '../observe/request-log.js'
import type { CallRecorder, FinishedCall } from '../observe/call-recorder.js'
import { PrefixFingerprint, type RequestPrefix } from '../observe/prefix-fingerprint.js'
import type { ModelApi, ResponseFacts } from '../observe/response-observer.js'
import { routeLabel } from '../observe/route-label.js'
import type { AttemptSpan, ExchangeSpan, ExchangeTracer } from '../observe/tracing.js'
import type { EndedBy } from '../relay/response-relay.js'
import type { FailureKind } from '../relay/upstream-failure.js'
import type { LineageBinding, Session, SessionResolver } from '../session/resolve-session.js'
import { NO_TOKENS, type TokenUsage } from '../session/session-usage.js'
import type { Drain, Drainable } from '../server/drain.js'
import { pathOf } from '../upstream/upstream-path.js'

/** How an exchange ended, as its log line, metrics and usage record it. */
export interface ExchangeOutcome {
  /** Status the client got (the upstream's, or the gateway's own); 0 when it got none. */
  status: number
  /** For metrics: complete, client (left early), upstream (failed), gateway (refused or stopped it). */
  endedBy: EndedBy
  /** Milliseconds from the start to the upstream's response headers; -1 when none came. */
  ttfbMs: number
  /** Body bytes written to the client (a WebSocket: frames from the upstream). */
  bytesOut: number
  failure?: { kind: FailureKind, code: string } | undefined
  /** A refusal's error code, e.g. `invalid_api_key`. */
  refusedWith?: string
  /** Why the gateway stopped a request after it went upstream: `body_too_large`, `request_timeout`, `shutdown`. */
  stoppedWith?: string
  /** A WebSocket: frames from the client, its first Close code, and the side that ended it. */
  webSocket?: { bytesIn: number, closeCode: number | undefined, closedBy: 'client' | 'upstream' | 'shutdown' }
}

export interface ExchangeDeps {
  logger: Logger
  metrics: GatewayMetrics
  sessions: SessionResolver
  drain: Drain
  /** Undefined when tracing is off: then every span hook below is one `?.` and nothing else. */
  tracer?: ExchangeTracer | undefined
  /** Records each model call with its cache outcome; undefined: none are recorded. */
  calls?: CallRecorder | undefined
}

/**
 * One request's life at the gateway, like fastify's Reply with its start time: begun when the
 * request arrives, admitted (in flight, with a session) or refused, and ended exactly once.
 * It is the only place that counts in-flight work, records metrics and usage and writes the
 * log line — for HTTP requests, WebSockets and refusals alike. What the response teaches
 * (its id, its usage) flows into it through `ResponseFacts`.
 */
export class Exchange implements Drainable, ResponseFacts, LineageBinding {
  readonly startedAt = performance.now()
  readonly method: string
  /** The client's path without its query (queries may carry keys). */
  readonly path: string
  /** The API a model call speaks (its answer's shapes differ); undefined for any other request. */
  readonly modelApi: ModelApi | undefined
  session: Session | undefined
  /** The upstream the request went to (the last one tried); set by the entry before each attempt. */
  upstream: string | undefined
  /** Upstreams tried: more than 1 after a failover. */
  attempts = 0
  /**
   * When the last attempt began, after a failover (`performance.now()`); 0 while there was one.
   * The upstream's time to first byte counts from there: the failed attempts' time (a connect
   * timeout, a 503) is not the answering upstream's.
   */
  retriedAt = 0
  #tokens: TokenUsage | undefined
  #usageHeld = false
  #ended = false
  #onCloseWhenIdle: (() => void) | undefined
  #onCut: (() => void) | undefined
  /** The drain cut it when the grace period ran out. */
  #cutAtShutdown = false
  readonly #span: ExchangeSpan | undefined
  /** Tracing's span waits for usage still being inflated: its outcome, kept until then. */
  #spanOutcome: ExchangeOutcome | undefined
  /** A model call's request prefix, read as its body streams upstream. */
  #prefix: PrefixFingerprint | undefined
  #responseModel: string | undefined
  /** A WebSocket's current model call began here (its client message); `performance.now()` time. */
  #callStartedAt: number
  /** The request's lineage keys, bound to its session once an upstream has served it (onAnswer). */
  #unboundLineage: readonly string[] | undefined
  /** The error a 2xx stream carried instead of a response (its code): the upstream refused the call. */
  #refusedInStream: string | undefined
  /** What the end said, kept for a call record written once held usage is released. */
  #ending: { status: number, ttfbMs: number, durationMs: number } | undefined

  /** An HTTP exchange's response, for the drain (a WebSocket has none: its tunnel has hooks of its own). */
  readonly #res: ServerResponse | undefined

  constructor (private readonly deps: ExchangeDeps, readonly transport: Transport, req: IncomingMessage, res?: ServerResponse) {
    this.#res = res
    this.method = req.method ?? 'GET'
    this.path = pathOf(req.url ?? '/')
    this.modelApi = modelApiOf(this.method, this.path)
    this.#span = deps.tracer?.startExchange(req, transport, this.path)
    this.#callStartedAt = this.startedAt
  }

  /** POST /v1/responses or /v1/chat/completions: a model call, with usage and a cache outcome. */
  get isModelCall (): boolean {
    return this.modelApi !== undefined
  }


  /** Cache analysis reads request prefixes (CACHE_ANALYSIS): an HTTP model call's body, a WebSocket's messages. */
  get readsPrefixes (): boolean {
    return this.deps.calls?.analysis === true
  }

  /**
   * The tap the request body is pushed through as it goes upstream, when cache analysis wants
   * the prefix of this model call; undefined otherwise (then nothing is read).
   */
  tapRequestBody (): PrefixFingerprint | undefined {
    if (!this.readsPrefixes || !this.isModelCall) return undefined
    this.#prefix = new PrefixFingerprint()
    return this.#prefix
  }

  /**
   * WebSocket: the client sent a request (`response.create` or `response.append`), whose first frame came at `startedAt`, so a
   * response (a model call of its own, with a span of its own when traced) begins.
   */
  onWebSocketRequest (startedAt: number): void {
    this.#callStartedAt = startedAt
    this.#span?.clientMessage(startedAt)
  }

  /**
   * Tracing is on: observers also report the model and, on a WebSocket, its events. Sampled or
   * not: the model read here also goes into the call's record and the model metric.
   */
  get traced (): boolean {
    return this.#span !== undefined
  }

  /** The request goes upstream: it is in flight (shutdown waits for it) under `session`. */
  admit (session: Session, cut: () => void): void {
    this.session = session
    this.#onCut = cut
    this.#span?.admitted(session)
    this.deps.metrics.exchangeStarted(this.transport)
    this.deps.drain.add(this)
  }

  /**
   * Answers with the gateway's own error; nothing went upstream. During the drain the answer
   * closes its connection, as every answer then does: a refusal after a wait (the body, the
   * session, its binding) was never admitted, so it heard no closeWhenIdle.
   */
  refuse (error: GatewayError, res: ServerResponse): void {
    if (!this.deps.drain.accepting) res.shouldKeepAlive = false
    error.send(res)
    this.end({ status: error.status, endedBy: 'gateway', ttfbMs: -1, bytesOut: 0, refusedWith: error.code })
  }

  /** The client left before anything of an answer reached it (status 0: it got none). */
  endClientGone (): void {
    // A WebSocket's line keeps its WebSocket fields (transport, closed by), as after a 101.
    const webSocket = this.transport === 'websocket' ? { bytesIn: 0, closeCode: undefined, closedBy: 'client' as const } : undefined
    this.end({ status: 0, endedBy: 'client', ttfbMs: -1, bytesOut: 0, webSocket })
  }

  /** Shutdown hooks of a long-lived exchange (a WebSocket's tunnel). */
  onDrain (closeWhenIdle: () => void, cut: () => void): void {
    this.#onCloseWhenIdle = closeWhenIdle
    this.#onCut = cut
    if (!this.deps.drain.accepting) closeWhenIdle()
  }

  closeWhenIdle (): void {
    if (this.#onCloseWhenIdle !== undefined) this.#onCloseWhenIdle()
    // An HTTP answer not begun yet says `Connection: close`, as one arriving now would: the
    // drain closes its connection once it is idle, and a client told keep-alive could send
    // its next request just as it does.
    else if (this.#res !== undefined && !this.#res.headersSent) this.#res.shouldKeepAlive = false
  }

  cut (): void {
    this.#cutAtShutdown = true
    this.#onCut?.()
  }

  /**
   * One upstream attempt's client span; undefined when tracing is off. Whoever ends the attempt
   * ends it. `upstreamPath` may carry a query: it is left out of the span.
   */
  startAttempt (origin: string, method: string, upstreamPath: string): AttemptSpan | undefined {
    // Positional arguments: with tracing off nothing is allocated here.
    return this.#span?.startAttempt({ upstream: this.upstream ?? NO_UPSTREAM, origin, method, path: pathOf(upstreamPath) })
  }

  bindWhenServed (keys: readonly string[]): void {
    this.#unboundLineage = keys
  }

  /**
   * The answer the client gets has begun (or, with no observer, the exchange ended) with
   * `status`: a 2xx binds the request's lineage keys to its session. Bound before the upstream
   * had answered, a request with a key the upstream then refused (pass-through mode) bound
   * them, so anyone who could reach the gateway could fill the store or claim keys first.
   */
  onAnswer (status: number): void {
    const keys = this.#unboundLineage
    if (keys === undefined) return
    this.#unboundLineage = undefined
    if (status >= 200 && status < 300 && this.session !== undefined) this.deps.sessions.bindLineage(keys, this.session.id)
  }

  onResponseId (id: string): void {
    if (this.session !== undefined) this.deps.sessions.learnResponse(this.session.id, id, this.upstream)
    this.#span?.responseId(id)
  }

  /** A conversation this request created (POST /v1/conversations, observed when origins are kept). */
  onConversationId (id: string): void {
    this.deps.sessions.learnConversation(id, this.upstream)
  }

  /** POST /v1/conversations with upstreams in several groups: its answer's id is learned. */
  get createsConversation (): boolean {
    return this.method === 'POST' && this.path === '/v1/conversations' && this.deps.sessions.keepsOrigins
  }

  /** The model a response names (`response.created`'s `response.model`); HTTP reports it only when traced. */
  onResponseModel (model: string): void {
    this.#responseModel = model
    this.#span?.responseModel(model)
  }

  /** WebSocket, traced: an upstream event, by type. */
  onResponseEvent (type: string | undefined): void {
    this.#span?.responseEvent(type)
  }

  /**
   * HTTP: the answer began with a 2xx but its stream carried an error before any response (a
   * rate limit sent as an `error` event): the call record says so, and is not the one the
   * session's next miss is judged against; the attempt's span takes the code as its `error.type`.
   */
  onRefusedInStream (code: string): void {
    this.#refusedInStream = code
    this.#span?.refusedInStream(code)
  }

  /** HTTP: the response's usage, counted when the exchange ends. */
  onUsage (tokens: TokenUsage): void {
    this.#countTokens(tokens)
    this.#tokens = tokens
  }

  #countTokens (tokens: TokenUsage): void {
    this.deps.metrics.tokensUsed(tokens, this.upstream ?? NO_UPSTREAM)
    this.#span?.usage(tokens)
  }

  /**
   * WebSocket: a response is over. A WebSocket carries many: each counts as a request of its
   * own, as an HTTP call does, with no tokens when it ended without usage (an `error`). With
   * `prefix`, the prefix of the request it answers when cache analysis reads them (it
   * resolves once that request has been read: a compressed one may still be inflating).
   */
  onWebSocketResponse (tokens: TokenUsage | undefined, prefix?: Promise<RequestPrefix | undefined>): void {
    if (tokens !== undefined) this.#countTokens(tokens)
    if (this.session !== undefined) this.deps.sessions.recordUsage(this.session.id, tokens ?? NO_TOKENS)
    this.#recordWebSocketCall(tokens, prefix)
  }

  /** The usage will be known only after the exchange ends (a compressed body still inflating). */
  holdUsage (): void {
    this.#usageHeld = true
  }

  releaseUsage (): void {
    this.#usageHeld = false
    if (this.#ended) this.#recordUsage()
    if (this.#spanOutcome !== undefined) this.#span?.end(this.#spanOutcome)
  }

  /** Ends the exchange: the first call counts, later ones are ignored. */
  end (outcome: ExchangeOutcome): void {
    if (this.#ended) return
    this.#ended = true
    this.onAnswer(outcome.status) // a call no observer reads: its lineage is bound now, if served
    // A request the drain cut is the gateway's, whichever side noticed first: the client's
    // connection closing, or the upstream agent the shutdown destroys right after.
    if (this.#cutAtShutdown && outcome.webSocket === undefined && outcome.endedBy !== 'complete') outcome = stoppedAtShutdown(outcome)
    const admitted = this.session !== undefined
    if (admitted) this.deps.drain.delete(this)
    const durationMs = performance.now() - this.startedAt
    this.#ending = { status: outcome.status, ttfbMs: outcome.ttfbMs, durationMs }
    this.deps.metrics.exchangeEnded({
      route: routeLabel(this.path),
      method: this.method,
      status: outcome.status,
      transport: this.transport,
      upstream: this.upstream ?? NO_UPSTREAM,
      ttfbMs: this.retriedAt === 0 || outcome.ttfbMs < 0 ? outcome.ttfbMs : outcome.ttfbMs - (this.retriedAt - this.startedAt),
      durationMs,
      endedBy: outcome.endedBy,
      failureKind: outcome.failure?.kind
    }, admitted)
    if (!this.#usageHeld) this.#recordUsage()
    if (this.#span !== undefined) this.#endSpan(outcome)
    logExchange(this.deps.logger, { transport: this.transport, method: this.method, path: this.path, session: this.session, upstream: this.upstream, attempts: this.attempts, durationMs, outcome, traceId: this.#span?.traceId, refusedInStream: this.#refusedInStream })
  }

  #endSpan (outcome: ExchangeOutcome): void {
    // Usage still inflating ends the span when it is released, so the span carries it.
    if (this.#usageHeld) this.#spanOutcome = outcome
    else this.#span?.end(outcome)
  }

  #recordUsage (): void {
    if (this.transport !== 'http' || this.session === undefined) return
    this.deps.sessions.recordUsage(this.session.id, this.#tokens ?? NO_TOKENS)
    const ending = this.#ending
    if (this.deps.calls === undefined || !this.isModelCall || ending === undefined) return
    const prefix = this.#prefix?.result()
    this.deps.calls.record(this.session.id, {
      time: performance.timeOrigin + this.startedAt,
      upstream: this.upstream ?? NO_UPSTREAM,
      fingerprint: prefix?.fingerprint ?? null,
      tokens: this.#tokens,
      input: prefix?.input,
      model: prefix?.model ?? this.#responseModel ?? null,
      status: ending.status,
      ttfbMs: ending.ttfbMs < 0 ? null : ending.ttfbMs,
      durationMs: ending.durationMs,
      error: this.#refusedInStream
    })
  }

  /**
   * Each response of a WebSocket is a model call of its own, recorded with the prefix of the
   * request (`response.create` or `response.append`) it answers (docs/websocket.md); without cache analysis, with none.
   */
  #recordWebSocketCall (tokens: TokenUsage | undefined, prefix: Promise<RequestPrefix | undefined> | undefined): void {
    const { calls } = this.deps
    const session = this.session
    if (calls === undefined || session === undefined) return
    const now = performance.now()
    const call: FinishedCall = {
      time: performance.timeOrigin + this.#callStartedAt,
      upstream: this.upstream ?? NO_UPSTREAM,
      fingerprint: null,
      tokens,
      model: this.#responseModel ?? null,
      status: 101,
      ttfbMs: null,
      durationMs: now - this.#callStartedAt
    }
    this.#callStartedAt = now // a response the client did not ask for anew starts here
    if (prefix === undefined) calls.record(session.id, call)
    else {
      void prefix.then((value) => {
        call.fingerprint = value?.fingerprint ?? null
        call.input = value?.input
        calls.record(session.id, call)
      })
    }
  }
}

function stoppedAtShutdown (outcome: ExchangeOutcome): ExchangeOutcome {
  const { status, ttfbMs, bytesOut, refusedWith, webSocket } = outcome
  return { status, endedBy: 'gateway', failure: undefined, stoppedWith: 'shutdown', ttfbMs, bytesOut, refusedWith, webSocket }
}

function modelApiOf (method: string, path: string): ModelApi | undefined {
  if (method !== 'POST') return undefined
  return path === '/v1/responses' ? 'responses' : path === '/v1/chat/completions' ? 'chat' : undefined
}
