/**
 * Whether the run passed: every check with its evidence. See soak/README.md for why each one
 * is judged the way it is, in particular the growth trend.
 */
import { errorCount } from './tally.mjs'

export function median (values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function quantile (values, q) {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** Least-squares slope of `key` over the samples, per minute. */
function slopePerMinute (samples, key) {
  const points = samples.map((s) => [s.at / 60_000, s[key]]).filter(([, y]) => Number.isFinite(y))
  if (points.length < 2) return NaN
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length
  let num = 0
  let den = 0
  for (const [x, y] of points) {
    num += (x - mx) * (y - my)
    den += (x - mx) ** 2
  }
  return den === 0 ? NaN : num / den
}

/** Names the samples taken under load by third: warm-up, middle, last. */
export function assignPhases (samples) {
  const load = samples.filter((s) => s.phase === 'load')
  const third = Math.floor(load.length / 3)
  load.forEach((s, i) => { s.phase = i < third ? 'warm-up' : i < 2 * third ? 'middle' : 'last' })
}

/** The lower quartile: for the V8 heap, the floor of its garbage-collection sawtooth, which is what retained objects raise. */
export function lowerQuartile (values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const at = (sorted.length - 1) * 0.25
  const below = Math.floor(at)
  return sorted[below] + (sorted[Math.min(below + 1, sorted.length - 1)] - sorted[below]) * (at - below)
}

/**
 * The growth heuristic: a statistic (the median; the lower quartile for the heap) of the last
 * third of the samples under load against the same of the middle third (the first third is
 * warm-up: JIT, pools, the session store filling to its bound). It fails when the last exceeds
 * the middle by more than max(tolerance × middle, slack).
 */
export function growth (samples, key, { tolerance, slack }, unit, statistic = median) {
  const middle = samples.filter((s) => s.phase === 'middle').map((s) => s[key])
  const last = samples.filter((s) => s.phase === 'last').map((s) => s[key])
  if (middle.length < 2 || last.length < 2) return { key, unit, skipped: 'fewer than 6 samples under load' }
  const m = statistic(middle)
  const l = statistic(last)
  const limit = Math.max(tolerance * m, slack)
  const steady = samples.filter((s) => s.phase === 'middle' || s.phase === 'last')
  return { key, unit, statistic: statistic === median ? 'median' : 'lower quartile', middle: m, last: l, growth: l - m, limit, tolerance, slack, slopePerMinute: slopePerMinute(steady, key), pass: l - m <= limit }
}

function check (name, pass, detail, { advisory = false } = {}) {
  return { name, pass, detail, advisory }
}

const fmt = (n, digits = 1) => Number.isFinite(n) ? n.toFixed(digits) : 'n/a'

export function judge ({ samples, tally, upstream, shutdown, log, options, idleTimeoutMs }) {
  const checks = []
  const { limits } = options

  checks.push(check('no byte lost or corrupted', tally.lostBytes === 0 && tally.corruptedBytes === 0,
    `${tally.bytesVerified.toLocaleString('en-US')} bytes checked; ${tally.lostBytes} lost, ${tally.corruptedBytes} corrupted`))

  const errors = errorCount(tally)
  checks.push(check('no unexpected error', errors === 0,
    errors === 0 ? 'every exchange ended as its kind should' : Object.entries(tally.errors).map(([k, e]) => `${k} ×${e.count}`).join(', ')))

  checks.push(check('the upstream could read every request', upstream.badRequests === 0, `${upstream.badRequests} requests without a readable spec`))

  // Abort propagation: every exchange the client walked out of must have been closed at the upstream.
  const latencies = []
  const missing = []
  for (const [id, atUs] of tally.clientAborts) {
    const seen = upstream.httpClosedEarly[id] ?? upstream.webSocketClosedEarly[id]
    if (seen === undefined) missing.push(id)
    else latencies.push((seen.atUs - atUs) / 1000)
  }
  const abortLatency = { count: tally.clientAborts.size, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.length === 0 ? NaN : Math.max(...latencies), missing: missing.length }
  checks.push(check('client aborts cancel the upstream', missing.length === 0 && !(abortLatency.max > limits.abortLatencyMs),
    `${latencies.length} of ${tally.clientAborts.size} seen closed by the upstream; latency p50 ${fmt(abortLatency.p50)} ms, p99 ${fmt(abortLatency.p99)} ms, max ${fmt(abortLatency.max)} ms (limit ${limits.abortLatencyMs} ms)${missing.length > 0 ? `; never closed: ${missing.slice(0, 5).join(', ')}` : ''}`))

  const stallsNotCancelled = [...tally.stalls].filter((id) => upstream.httpClosedEarly[id] === undefined)
  const cutMs = tally.stallCutMs
  const earliest = cutMs.length === 0 ? NaN : Math.min(...cutMs)
  const latest = cutMs.length === 0 ? NaN : Math.max(...cutMs)
  const stallCutOk = cutMs.length === 0 || (earliest >= idleTimeoutMs * 0.9 && latest <= idleTimeoutMs + 5000)
  checks.push(check('stalled upstreams are cut at the idle timeout', stallsNotCancelled.length === 0 && stallCutOk,
    `${tally.stalls.size} stalls, ${stallsNotCancelled.length} left open upstream; client cut after ${fmt(median(cutMs), 0)} ms median (${fmt(earliest, 0)}–${fmt(latest, 0)}), UPSTREAM_IDLE_TIMEOUT_MS ${idleTimeoutMs}`))

  const baseline = samples.find((s) => s.phase === 'idle')
  const drained = samples.findLast((s) => s.phase === 'drained')
  checks.push(check('everything drains when traffic stops', drained !== undefined && drained.activeStreams === 0 && upstream.httpOpen === 0 && upstream.webSocketsOpen === 0 && tally.inFlight === 0,
    drained === undefined ? 'no sample after the drain' : `active_streams ${drained.activeStreams}; upstream still open: ${upstream.httpOpen} HTTP, ${upstream.webSocketsOpen} WebSocket; client in flight ${tally.inFlight}`))
  if (baseline !== undefined && drained !== undefined) {
    checks.push(check('file descriptors return to the idle baseline', drained.fds <= baseline.fds + limits.drainFdSlack,
      `${baseline.fds} before traffic, ${drained.fds} after the drain (slack ${limits.drainFdSlack}); handles ${baseline.handles} → ${drained.handles}`))
  }

  const trends = [
    growth(samples, 'rssMb', limits.rss, 'MB'),
    growth(samples, 'heapUsedMb', limits.heap, 'MB', lowerQuartile),
    growth(samples, 'fds', limits.fds, ''),
    growth(samples, 'handles', limits.fds, ''),
    growth(samples, 'series', { tolerance: 0, slack: 10 }, '')
  ]
  const trendNames = { rssMb: 'RSS', heapUsedMb: 'V8 heap used', fds: 'open fds', handles: 'active handles', series: '/metrics series' }
  for (const t of trends) {
    const name = `no growth: ${trendNames[t.key]}`
    if (t.skipped !== undefined) {
      checks.push(check(name, true, `not judged: ${t.skipped}`, { advisory: true }))
      continue
    }
    checks.push(check(name, t.pass,
      `${t.statistic} of the middle third ${fmt(t.middle)}${t.unit}, of the last third ${fmt(t.last)}${t.unit}: ${t.growth >= 0 ? '+' : ''}${fmt(t.growth)}${t.unit} (allowed +${fmt(t.limit)}${t.unit} = max(${Math.round(t.tolerance * 100)}%, ${t.slack}${t.unit})); slope ${fmt(t.slopePerMinute, 2)}${t.unit}/min`,
      { advisory: !options.judgeTrend }))
  }

  const early = log.shutdowns.filter((s) => Date.parse(s.time) < shutdown.requestedAt)
  checks.push(check('the gateway ran until the soak stopped it', !tally.errors['gateway-exited'] && early.length === 0,
    early.length > 0
      ? `it shut down during the run on ${early.map((s) => `${s.signal} at ${s.time}`).join(', ')}: a signal from outside the soak, whose numbers are then not the gateway's`
      : tally.errors['gateway-exited'] !== undefined ? tally.errors['gateway-exited'].examples[0] : 'yes'))
  checks.push(check('SIGTERM with nothing in flight: exit 0', shutdown.code === 0, `exit ${shutdown.code ?? shutdown.signal} after ${fmt(shutdown.ms, 0)} ms`))

  const logsRequests = ['info', 'debug', 'trace'].includes(options.logLevel)
  checks.push(check('every exchange is logged once', !logsRequests || (log.requests.http === tally.httpRequests && log.requests.websocket === tally.webSockets),
    logsRequests
      ? `log lines: ${log.requests.http} HTTP, ${log.requests.websocket} WebSocket; clients made ${tally.httpRequests} HTTP requests, ${tally.webSockets} WebSockets`
      : `not judged: LOG_LEVEL=${options.logLevel} writes no request lines`,
    { advisory: !logsRequests }))

  const errorLines = Object.entries(log.warnings).filter(([, w]) => w.level >= 50)
  checks.push(check('no error-level log line, no Node warning', errorLines.length === 0 && log.other.count === 0,
    [...errorLines.map(([k, w]) => `${k} ×${w.count}`), log.other.count > 0 ? `${log.other.count} non-JSON lines, e.g. ${log.other.examples[0]}` : ''].filter(Boolean).join('; ') || 'none'))

  const arrivals = Object.values(tally.kinds).reduce((a, k) => a + k.started, 0) + tally.shed
  checks.push(check('the load generator kept up', tally.shed <= arrivals * 0.01,
    `${tally.shed} of ${arrivals} arrivals shed at --concurrency ${options.concurrency}`, { advisory: true }))

  const failed = checks.filter((c) => !c.pass && !c.advisory)
  return { pass: failed.length === 0, failed: failed.map((c) => c.name), checks, trends, abortLatency }
}
