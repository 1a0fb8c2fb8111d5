import type { IncomingMessage, ServerResponse } from 'node:http'
import type { GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import { NO_UPSTREAM, type GatewayMetrics, type Transport } from '../observe/metrics.js'
import { logExchange } from '../observe/request-log.js'
import type { ResponseFacts } from '../observe/response-observer.js'
import { routeLabel } from '../observe/route-label.js'
import type { EndedBy } from '../relay/response-relay.js'
import type { FailureKind } from '../relay/upstream-failure.js'
import type { Session, SessionResolver } from '../session/resolve-session.js'
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
  /** A WebSocket: frames from the client, its first Close code, and the side that ended it. */
  webSocket?: { bytesIn: number, closeCode: number | undefined, closedBy: 'client' | 'upstream' | 'shutdown' }
}

export interface ExchangeDeps {
  logger: Logger
  metrics: GatewayMetrics
  sessions: SessionResolver
  drain: Drain
}

/**
 * One request's life at the gateway, like fastify's Reply with its start time: begun when the
 * request arrives, admitted (in flight, with a session) or refused, and ended exactly once.
 * It is the only place that counts in-flight work, records metrics and usage and writes the
 * log line — for HTTP requests, WebSockets and refusals alike. What the response teaches
 * (its id, its usage) flows into it through `ResponseFacts`.
 */
export class Exchange implements Drainable, ResponseFacts {
  readonly startedAt = performance.now()
  readonly method: string
  /** The client's path without its query (queries may carry keys). */
  readonly path: string
  session: Session | undefined
  /** The upstream the request went to (the last one tried); set by the entry before each attempt. */
  upstream: string | undefined
  /** Upstreams tried: more than 1 after a failover. */
  attempts = 0
  #tokens: TokenUsage | undefined
  #usageHeld = false
  #ended = false
  #onCloseWhenIdle: (() => void) | undefined
  #onCut: (() => void) | undefined

  constructor (private readonly deps: ExchangeDeps, readonly transport: Transport, req: IncomingMessage) {
    this.method = req.method ?? 'GET'
    this.path = pathOf(req.url ?? '/')
  }

  /** The request goes upstream: it is in flight (shutdown waits for it) under `session`. */
  admit (session: Session, cut: () => void): void {
    this.session = session
    this.#onCut = cut
    this.deps.metrics.exchangeStarted(this.transport)
    this.deps.drain.add(this)
  }

  /** Answers with the gateway's own error; nothing went upstream. */
  refuse (error: GatewayError, res: ServerResponse): void {
    error.send(res)
    this.end({ status: error.status, endedBy: 'gateway', ttfbMs: -1, bytesOut: 0, refusedWith: error.code })
  }

  /** Shutdown hooks of a long-lived exchange (a WebSocket's tunnel). */
  onDrain (closeWhenIdle: () => void, cut: () => void): void {
    this.#onCloseWhenIdle = closeWhenIdle
    this.#onCut = cut
    if (!this.deps.drain.accepting) closeWhenIdle()
  }

  closeWhenIdle (): void {
    this.#onCloseWhenIdle?.()
  }

  cut (): void {
    this.#onCut?.()
  }

  onResponseId (id: string): void {
    if (this.session !== undefined) this.deps.sessions.learnResponse(this.session.id, id)
  }

  /** A response's usage. A WebSocket carries many responses: each counts as a request of its own. */
  onUsage (tokens: TokenUsage): void {
    this.deps.metrics.tokensUsed(tokens, this.upstream ?? NO_UPSTREAM)
    if (this.transport === 'websocket') {
      if (this.session !== undefined) this.deps.sessions.recordUsage(this.session.id, tokens)
    } else {
      this.#tokens = tokens
    }
  }

  /** The usage will be known only after the exchange ends (a compressed body still inflating). */
  holdUsage (): void {
    this.#usageHeld = true
  }

  releaseUsage (): void {
    this.#usageHeld = false
    if (this.#ended) this.#recordUsage()
  }

  /** Ends the exchange: the first call counts, later ones are ignored. */
  end (outcome: ExchangeOutcome): void {
    if (this.#ended) return
    this.#ended = true
    const admitted = this.session !== undefined
    if (admitted) this.deps.drain.delete(this)
    const durationMs = performance.now() - this.startedAt
    this.deps.metrics.exchangeEnded({
      route: routeLabel(this.path),
      method: this.method,
      status: outcome.status,
      transport: this.transport,
      upstream: this.upstream ?? NO_UPSTREAM,
      ttfbMs: outcome.ttfbMs,
      durationMs,
      endedBy: outcome.endedBy,
      failureKind: outcome.failure?.kind
    }, admitted)
    if (!this.#usageHeld) this.#recordUsage()
    logExchange(this.deps.logger, { transport: this.transport, method: this.method, path: this.path, session: this.session, upstream: this.upstream, attempts: this.attempts, durationMs, outcome })
  }

  #recordUsage (): void {
    if (this.transport === 'http' && this.session !== undefined) this.deps.sessions.recordUsage(this.session.id, this.#tokens ?? NO_TOKENS)
  }
}
