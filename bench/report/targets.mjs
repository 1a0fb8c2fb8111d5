/**
 * The performance targets for session-gateway, each computed from a run's medians.
 * A target whose scenario did not run (or whose anchor was missing) is reported as not measured.
 */
import { GATEWAY_ID, TRACING_ID } from '../lib/contenders.mjs'
import { median } from '../lib/stats.mjs'
import { ROUTING_LIMIT } from '../scenarios/routing.mjs'

const RSS_LIMIT_MB = 400
const IDLE_RSS_LIMIT_MB = 60
const START_LIMIT_MS = 500
/** The floor's own spread between rounds, (highest − lowest) / median, that makes a 1.1× ratio meaningful. */
const FLOOR_SPREAD_LIMIT = 0.1
const HELD_STREAMS_TARGET = 10_000
const ADDED_BODY_MS_LIMIT = 2

/** Median over rounds of one field for one proxy; NaN when it did not run. */
export function medianOf (scenario, proxyId, field) {
  const rows = scenario?.perProxy[proxyId]
  return rows === undefined ? NaN : median(rows.map((row) => row[field]))
}

const times = (x) => `${x.toFixed(2)}×`
const verdict = (ok) => ok ? 'pass' : '**FAIL**'

function ratioTarget (label, scenario, field, anchorId, limit, gatewayId = GATEWAY_ID) {
  const ratio = medianOf(scenario, gatewayId, field) / medianOf(scenario, anchorId, field)
  if (!Number.isFinite(ratio)) return { label, measured: 'not measured', result: '—' }
  return { label, measured: times(ratio), result: verdict(ratio <= limit) }
}

/** `[{ label, measured, result }]` in the order. */
export function evaluateTargets (results) {
  const { short, held, large, footprint } = results
  const targets = [
    ratioTarget('(a) CPU per proxied request ≤ 0.8× fastify + @fastify/http-proxy', short, 'cpuMicrosPerRequest', 'fastify-http-proxy', 0.8),
    ratioTarget('(a) CPU per proxied request ≤ 1.1× node:http + undici (every feature on)', short, 'cpuMicrosPerRequest', 'node-undici', 1.1),
    floorSpread(short),
    ratioTarget('(a) p99 latency no worse than fastify + @fastify/http-proxy (≤ 1.00×)', short, 'p99Ms', 'fastify-http-proxy', 1.0),
    ratioTarget('(a) CPU per request with tracing on (100% sampled) ≤ 1.25× tracing off', short, 'cpuMicrosPerRequest', GATEWAY_ID, 1.25, TRACING_ID)
  ]

  const heldRows = held?.perProxy[GATEWAY_ID]
  const heldLabel = `(c) ${HELD_STREAMS_TARGET.toLocaleString('en')} concurrent streams: zero errors, peak RSS ≤ ${RSS_LIMIT_MB} MB`
  if (heldRows === undefined) {
    targets.push({ label: heldLabel, measured: 'not measured', result: '—' })
  } else {
    const errors = heldRows.reduce((sum, row) => sum + row.errors, 0)
    const rss = Math.max(...heldRows.map((row) => row.peakRssMb))
    const streams = heldRows[0].streams
    const ok = errors === 0 && rss <= RSS_LIMIT_MB
    const partial = streams < HELD_STREAMS_TARGET ? ` at ${streams.toLocaleString('en')} streams, not the target's ${HELD_STREAMS_TARGET.toLocaleString('en')}` : ''
    targets.push({ label: heldLabel, measured: `${errors} errors, ${rss.toFixed(0)} MB at ${streams.toLocaleString('en')} streams`, result: verdict(ok) + partial })
  }

  const mb = large === undefined ? '' : `${(large.bytes / 2 ** 20).toFixed(0)} MiB`
  const added = medianOf(large, GATEWAY_ID, 'addedMs')
  targets.push(Number.isFinite(added)
    ? { label: `(d) ${mb} JSON body with previous_response_id at its end: ≤ ${ADDED_BODY_MS_LIMIT} ms added vs the same size without it`, measured: `${added.toFixed(2)} ms`, result: verdict(added <= ADDED_BODY_MS_LIMIT) }
    : { label: '(d) 5 MiB body with previous_response_id: ≤ 2 ms added', measured: 'not measured', result: '—' })
  // The body is read whole before going upstream; the streaming floor shows what that costs.
  const overFloor = medianOf(large, GATEWAY_ID, 'withIdMs') - medianOf(large, 'node-undici', 'withIdMs')
  if (Number.isFinite(overFloor)) {
    targets.push({ label: `(d) informative: same body, added vs node:http + undici, which streams it through (≤ ${ADDED_BODY_MS_LIMIT} ms)`, measured: `${overFloor.toFixed(2)} ms`, result: verdict(overFloor <= ADDED_BODY_MS_LIMIT) })
  }
  const idleRss = medianOf(footprint, GATEWAY_ID, 'idleRssMb')
  const startMs = medianOf(footprint, GATEWAY_ID, 'startMs')
  targets.push(Number.isFinite(idleRss)
    ? { label: `(e) idle RSS ≤ ${IDLE_RSS_LIMIT_MB} MB`, measured: `${idleRss.toFixed(1)} MB`, result: verdict(idleRss <= IDLE_RSS_LIMIT_MB) }
    : { label: `(e) idle RSS ≤ ${IDLE_RSS_LIMIT_MB} MB`, measured: 'not measured', result: '—' })
  targets.push(Number.isFinite(startMs)
    ? { label: `(e) start to first /healthz ≤ ${START_LIMIT_MS} ms`, measured: `${startMs.toFixed(0)} ms`, result: verdict(startMs <= START_LIMIT_MS) }
    : { label: `(e) start to first /healthz ≤ ${START_LIMIT_MS} ms`, measured: 'not measured', result: '—' })
  targets.push(routingTarget(results.routing))
  return targets
}

/**
 * (f): the median of the rounds' paired ratios. When the middle half of those ratios straddles
 * the limit, the verdict says so: the gap is within what the machine moves between rounds.
 */
function routingTarget (routing) {
  const label = `(f) CPU per request with three upstreams ≤ ${ROUTING_LIMIT}× one upstream (median of paired rounds)`
  if (routing === undefined || !Number.isFinite(routing.ratio)) return { label, measured: 'not measured', result: '—' }
  const measured = `${routing.ratio.toFixed(3)}× (middle half ${routing.ratioQ1.toFixed(3)}–${routing.ratioQ3.toFixed(3)}, ${routing.rounds} rounds)`
  const straddles = routing.ratioQ1 <= ROUTING_LIMIT && routing.ratioQ3 > ROUTING_LIMIT
  return { label, measured, result: verdict(routing.ratio <= ROUTING_LIMIT) + (straddles ? ' (within the rounds\' spread)' : '') }
}

/** How far the node:http + undici floor itself moved between rounds: a ratio to it means little past this. */
function floorSpread (short) {
  const label = `(a) the floor's own spread between rounds ≤ ${FLOOR_SPREAD_LIMIT * 100}% (node:http + undici CPU/request)`
  const values = (short?.perProxy['node-undici'] ?? []).map((row) => row.cpuMicrosPerRequest).filter(Number.isFinite)
  if (values.length < 2) return { label, measured: 'not measured', result: '—' }
  const spread = (Math.max(...values) - Math.min(...values)) / median(values)
  return { label, measured: `${(spread * 100).toFixed(1)}% over ${values.length} rounds`, result: verdict(spread <= FLOOR_SPREAD_LIMIT) }
}
