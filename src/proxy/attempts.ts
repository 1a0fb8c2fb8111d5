/**
 * Several upstreams: one request tried on the upstreams of its route plan, in order, until one
 * answers. An attempt is one undici dispatch to one upstream with its own handler (the entry's
 * `StartAttempt`); its `AttemptGate` decides, before a byte reaches the client, whether a
 * failure is retried on the next upstream, and keeps health, metrics and the session's binding.
 */
import type { Logger } from '../observe/logger.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import type { FailoverGate } from '../relay/response-relay.js'
import type { FailureKind, UpstreamFailure } from '../relay/upstream-failure.js'
import type { SessionResolver } from '../session/resolve-session.js'
import { retryAfterMs } from '../upstream/upstream-health.js'
import { judgeAnswer, type RebindReason, type Upstream } from '../upstream/upstream-set.js'
import type { Exchange } from './exchange.js'

/** The warn line of an upstream that refused a request carrying the gateway's own key. */
export const KEY_REFUSED_LINE = "upstream refused a request with the gateway's key, tried elsewhere: the key revoked or its project without access, or a client's header, path or model the key may not use"
const KEY_REFUSAL_LINE_MS = 60_000
/** When each upstream's last such line was written (`performance.now()`); an Upstream is one gateway's. */
const lastKeyRefusalLine = new WeakMap<Upstream, number>()

export interface AttemptDeps {
  metrics: GatewayMetrics
  sessions: SessionResolver
  logger: Logger
}

export interface AttemptPlan {
  order: Upstream[]
  /** The upstream the session was bound to before this request, if any. */
  boundName: string | undefined
  /** Why the first upstream tried is not the bound one. */
  rebindReason: RebindReason | undefined
  /**
   * The session stays bound where it is, whichever upstream answers: a path naming a response
   * made in another group before a failover is read there, and moves nothing.
   */
  keepsBinding: boolean
  /** Whether the request (its body) can be sent again, asked when an attempt failed; `unsent`: before it connected. */
  replayable: (unsent: boolean) => boolean
  /** True once the client is gone: no further attempt is started. */
  clientGone: () => boolean
}

/** Sends the request to `upstream`, with a handler that consults `gate`. */
export type StartAttempt = (upstream: Upstream, gate: AttemptGate) => void

export class UpstreamAttempts {
  readonly #deps: AttemptDeps
  readonly #exchange: Exchange
  readonly #plan: AttemptPlan
  readonly #start: StartAttempt
  #index = -1

  constructor (deps: AttemptDeps, exchange: Exchange, plan: AttemptPlan, start: StartAttempt) {
    this.#deps = deps
    this.#exchange = exchange
    this.#plan = plan
    this.#start = start
  }

  /** Starts the next attempt; the first call starts the first. */
  next (): void {
    this.#index++
    const upstream = this.#plan.order[this.#index]!
    if (this.#index > 0 && this.#plan.clientGone()) {
      // The client left between two attempts: no relay is listening any more.
      this.#exchange.endClientGone()
      return
    }
    this.#exchange.upstream = upstream.name
    this.#exchange.attempts = this.#index + 1
    if (this.#index > 0) this.#exchange.retriedAt = performance.now()
    this.#start(upstream, new AttemptGate(this, upstream))
  }

  /** Whether a failed attempt may be followed by another; `unsent`: it failed before connecting. */
  canRetry (unsent: boolean): boolean {
    return this.#index + 1 < this.#plan.order.length && !this.#plan.clientGone() && this.#plan.replayable(unsent)
  }

  /** An attempt failed and another follows: counted here (the exchange counts only its last). */
  retried (upstream: Upstream, kind: FailureKind | 'status'): void {
    this.#deps.metrics.upstreamFailed(upstream.name, kind)
    // Not from inside undici's callback that reported the failure.
    queueMicrotask(() => this.next())
  }

  /** `upstream` answered: the session is bound to it, so its next requests go there directly. */
  served (upstream: Upstream): void {
    upstream.health.recordSuccess()
    const { boundName, rebindReason, keepsBinding } = this.#plan
    if (boundName === upstream.name || keepsBinding) return
    const session = this.#exchange.session!
    // A first binding (none was found: perhaps only because Redis did not answer in time)
    // never overwrites one another replica made.
    this.#deps.sessions.bindUpstream(session.id, upstream.name, boundName !== undefined)
    if (boundName !== undefined) this.#deps.metrics.sessionRebound(this.#index > 0 ? 'failover' : rebindReason ?? 'failover')
  }

  /**
   * Managed mode: `upstream` answered 401 or 403 (judgeAnswer's `key_refused`). Not a health
   * failure, so no ejection line says it: a warn line does, once a minute per upstream, so a
   * revoked key is seen in the log and not only in the errors metric.
   */
  keyRefused (upstream: Upstream, status: number): void {
    const now = performance.now()
    const last = lastKeyRefusalLine.get(upstream)
    if (last !== undefined && now - last < KEY_REFUSAL_LINE_MS) return
    lastKeyRefusalLine.set(upstream, now)
    this.#deps.logger.warn({ upstream: upstream.name, status }, KEY_REFUSED_LINE)
  }

  failed (upstream: Upstream, retryAfter: number): void {
    const cooldownMs = upstream.health.recordFailure(retryAfter)
    if (cooldownMs > 0) this.#deps.logger.warn({ upstream: upstream.name, cooldown_ms: cooldownMs }, 'upstream ejected: failed too often in a row')
  }
}

/** One attempt's decisions, made before anything of its answer reaches the client. */
export class AttemptGate implements FailoverGate {
  readonly #attempts: UpstreamAttempts
  readonly #upstream: Upstream

  constructor (attempts: UpstreamAttempts, upstream: Upstream) {
    this.#attempts = attempts
    this.#upstream = upstream
  }

  onStatus (statusCode: number, rawHeaders: Buffer[]): 'relay' | 'retry' {
    const verdict = judgeAnswer(this.#upstream, statusCode)
    if (verdict === 'served') {
      this.served()
      return 'relay'
    }
    // A refused managed key is tried elsewhere, but only a failure counts toward ejection.
    if (verdict === 'failed') this.#attempts.failed(this.#upstream, statusCode === 429 ? retryAfterMs(rawHeaders) : 0)
    else this.#attempts.keyRefused(this.#upstream, statusCode)
    return this.#retry('status', false)
  }

  onFailure (failure: UpstreamFailure): 'relay' | 'retry' {
    this.#attempts.failed(this.#upstream, 0)
    // Refused, unresolved, a TLS handshake or a connect that timed out: nothing was sent.
    return this.#retry(failure.kind, failure.kind === 'connect' || failure.code === 'UND_ERR_CONNECT_TIMEOUT')
  }

  /** The upstream answered (a status that is relayed, or a WebSocket's 101). */
  served (): void {
    this.#attempts.served(this.#upstream)
  }

  #retry (kind: FailureKind | 'status', unsent: boolean): 'relay' | 'retry' {
    if (!this.#attempts.canRetry(unsent)) return 'relay'
    this.#attempts.retried(this.#upstream, kind)
    return 'retry'
  }
}
