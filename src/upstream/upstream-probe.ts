import type { Dispatcher } from 'undici'
import type { Logger } from '../observe/logger.js'
import { probePath } from './upstream-path.js'
import type { Upstream } from './upstream-set.js'

/**
 * Active health checks, for upstreams that set `probe_path`: a GET every `probe_interval_ms`
 * of `probe_path` under the upstream's url, with the url's query (see `probePath`) and the
 * upstream's own headers (its key, if any). An answer below 500 (and not 429) counts
 * as a success and ends an ejection at once; anything else counts as a failure, as a failed
 * request would. Returns a function that stops them.
 */
export function startUpstreamProbes (upstreams: readonly Upstream[], dispatcher: Dispatcher, logger: Logger): () => void {
  const timers = upstreams.filter((upstream) => upstream.spec.probePath !== '').map((upstream) => {
    const path = probePath(upstream.spec.probePath, upstream.target)
    const timer = setInterval(() => { void probe(upstream, path, dispatcher, logger) }, upstream.spec.probeIntervalMs)
    timer.unref()
    return timer
  })
  return () => { for (const timer of timers) clearInterval(timer) }
}

async function probe (upstream: Upstream, path: string, dispatcher: Dispatcher, logger: Logger): Promise<void> {
  const { target, spec } = upstream
  const wasHealthy = upstream.health.isHealthy()
  try {
    const res = await dispatcher.request({
      origin: target.origin,
      path,
      method: 'GET',
      headers: upstream.headers([], 'health-probe'),
      headersTimeout: spec.probeIntervalMs,
      bodyTimeout: spec.probeIntervalMs
    })
    await res.body.dump()
    if (res.statusCode >= 500 || res.statusCode === 429) {
      probeFailed(upstream, logger, { probe_status: res.statusCode })
      return
    }
    upstream.health.recordSuccess()
    if (!wasHealthy) logger.info({ upstream: upstream.name }, 'upstream back: its health probe answered')
  } catch (err) {
    probeFailed(upstream, logger, { probe_error: errorCode(err) })
  }
}

/** A failed probe counts as a failed request would; the one that ejects says so, as a request's does (attempts.ts). */
function probeFailed (upstream: Upstream, logger: Logger, why: { probe_status: number } | { probe_error: string }): void {
  const cooldownMs = upstream.health.recordFailure()
  if (cooldownMs > 0) logger.warn({ upstream: upstream.name, cooldown_ms: cooldownMs, ...why }, 'upstream ejected: its health probe failed')
}

/** undici's error code (`UND_ERR_CONNECT_TIMEOUT`, `ECONNREFUSED`, …); never a message, which may quote a URL. */
function errorCode (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'unknown'
}
