import type { Dispatcher } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import type { Logger } from '../observe/logger.js'
import { createProbeAgent } from './upstream-agent.js'
import { retryAfterValueMs } from './upstream-health.js'
import { probePath } from './upstream-path.js'
import type { Upstream } from './upstream-set.js'

/**
 * Active health checks, for upstreams that set `probe_path`: a GET of `probe_path` under the
 * upstream's url, with the url's query (see `probePath`) and the upstream's own headers (its
 * key, if any), `probe_interval_ms` after the last one ended, each given `probe_timeout_ms`,
 * on connections of their own (never queued behind requests: see `createProbeAgent`).
 * An answer below 500 (and not 429) counts as a success and ends an ejection at once; anything
 * else counts as a failure, as a failed request would. Returns a function that stops them and
 * closes their connections.
 */
export function startUpstreamProbes (upstreams: readonly Upstream[], settings: GatewayConfig['upstream'], logger: Logger): () => Promise<void> {
  const probed = upstreams.filter((upstream) => upstream.spec.probePath !== '')
  if (probed.length === 0) return async () => {}
  const dispatcher = createProbeAgent(settings)
  const loops = probed.map((upstream) => new ProbeLoop(upstream, dispatcher, logger))
  return async () => {
    for (const loop of loops) loop.stop()
    await dispatcher.destroy()
  }
}

/** The reason a probe is cut at its upstream's `probe_timeout_ms`; its code is what the log line shows. */
class ProbeTimeoutError extends Error {
  override name = 'ProbeTimeoutError'
  readonly code = 'PROBE_TIMEOUT'
  constructor (timeoutMs: number) {
    super(`the health probe had no whole answer within ${timeoutMs} ms`)
  }
}

/** The reason a probe in flight is cut when the gateway closes: no verdict on its upstream. */
class ProbesStoppedError extends Error {
  override name = 'ProbesStoppedError'
  constructor () {
    super('health probes stopped')
  }
}

/**
 * One upstream's probes, one at a time: the next is due `probe_interval_ms` after the last one
 * ended, so a slow answer never has another probe sent on top of it.
 */
class ProbeLoop {
  readonly #upstream: Upstream
  readonly #path: string
  readonly #dispatcher: Dispatcher
  readonly #logger: Logger
  #next: NodeJS.Timeout | undefined
  #inFlight: AbortController | undefined
  #stopped = false

  constructor (upstream: Upstream, dispatcher: Dispatcher, logger: Logger) {
    this.#upstream = upstream
    this.#path = probePath(upstream.spec.probePath, upstream.target)
    this.#dispatcher = dispatcher
    this.#logger = logger
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#next)
    // Cut now: the gateway is closing, and its answer would say nothing.
    this.#inFlight?.abort(new ProbesStoppedError())
  }

  #schedule (): void {
    this.#next = setTimeout(() => { void this.#run() }, this.#upstream.spec.probeIntervalMs)
    this.#next.unref()
  }

  async #run (): Promise<void> {
    const upstream = this.#upstream
    const wasHealthy = upstream.health.isHealthy()
    const controller = new AbortController()
    this.#inFlight = controller
    const deadline = verdictAtDeadline(controller, upstream.spec.probeTimeoutMs)
    try {
      const verdict = await Promise.race([ask(upstream, this.#path, this.#dispatcher, controller.signal), deadline.verdict])
      // Stopped: the probe was cut by the close, and says nothing of its upstream.
      if (!this.#stopped) judge(upstream, this.#logger, verdict, wasHealthy)
    } finally {
      clearTimeout(deadline.timer)
      this.#inFlight = undefined
      if (!this.#stopped) this.#schedule()
    }
  }
}

/** What one probe found: the status of its whole answer (and a 429's `retry-after`), or the code of what ended it. */
type ProbeVerdict = { probe_status: number, retryAfterMs?: number } | { probe_error: string }

/**
 * One deadline for all of a probe (connect, TLS, headers, body), on a precise timer (undici's
 * own tick every half second), whose verdict stands at once: undici cuts a request only once it
 * is on a connection, so a connect that hangs (an unanswered SYN or TLS handshake) held the
 * verdict until `connect_timeout_ms`. Such a connect, if it ever completes, is cut before
 * anything is sent on it.
 */
function verdictAtDeadline (controller: AbortController, timeoutMs: number): { verdict: Promise<ProbeVerdict>, timer: NodeJS.Timeout } {
  let timer: NodeJS.Timeout | undefined
  const verdict = new Promise<ProbeVerdict>((resolve) => {
    timer = setTimeout(() => {
      const reason = new ProbeTimeoutError(timeoutMs)
      controller.abort(reason)
      resolve({ probe_error: reason.code })
    }, timeoutMs)
    timer.unref()
  })
  return { verdict, timer: timer! }
}

/** Sends one probe; resolves (never rejects) once its whole answer is in, or once it failed. */
async function ask (upstream: Upstream, path: string, dispatcher: Dispatcher, signal: AbortSignal): Promise<ProbeVerdict> {
  try {
    const res = await dispatcher.request({
      origin: upstream.target.origin,
      path,
      method: 'GET',
      headers: upstream.headers([], 'health-probe'),
      signal,
      // The deadline bounds it; the pool's timeouts are sized for long streams.
      headersTimeout: 0,
      bodyTimeout: 0
    })
    // With the signal, a body cut by the deadline rejects here rather than ending quietly;
    // past the limit (undici's default) the rest is not read, and the status stands.
    await res.body.dump({ signal, limit: 128 * 1024 })
    if (res.statusCode !== 429) return { probe_status: res.statusCode }
    const retryAfter = res.headers['retry-after']
    return { probe_status: 429, retryAfterMs: retryAfterValueMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) }
  } catch (err) {
    return { probe_error: errorCode(err) }
  }
}

/**
 * An answer below 500 (not 429) is a success, which ends an ejection: one the upstream was in
 * when the probe was sent, or one requests made while it was under way. Anything else fails.
 */
function judge (upstream: Upstream, logger: Logger, verdict: ProbeVerdict, wasHealthy: boolean): void {
  if ('probe_error' in verdict || verdict.probe_status >= 500 || verdict.probe_status === 429) {
    probeFailed(upstream, logger, verdict)
    return
  }
  const endsEjection = !wasHealthy || !upstream.health.isHealthy()
  upstream.health.recordSuccess()
  if (endsEjection) logger.info({ upstream: upstream.name }, 'upstream back: its health probe answered')
}

/**
 * A failed probe counts as a failed request would (a 429's `retry-after` the least cooldown if it
 * ejects); the one that ejects says so, as a request's does (attempts.ts).
 */
function probeFailed (upstream: Upstream, logger: Logger, verdict: ProbeVerdict): void {
  const retryAfterMs = 'retryAfterMs' in verdict ? verdict.retryAfterMs : 0
  const cooldownMs = upstream.health.recordFailure(retryAfterMs)
  const why = 'probe_error' in verdict ? { probe_error: verdict.probe_error } : { probe_status: verdict.probe_status }
  if (cooldownMs > 0) logger.warn({ upstream: upstream.name, cooldown_ms: cooldownMs, ...why }, 'upstream ejected: its health probe failed')
}

/** undici's error code (`UND_ERR_CONNECT_TIMEOUT`, `ECONNREFUSED`, …); never a message, which may quote a URL. */
function errorCode (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'unknown'
}
