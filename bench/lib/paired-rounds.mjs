/**
 * One round of a paired comparison, shared by (f) and `bench/paired.mjs`: `seconds` per
 * contender, cut into slices of SLICE_SECONDS taken in ABBA order (the round's parity decides
 * who starts), so contention that changes over a second or more falls on both alike. CPU is
 * each contender's, from the scheduler's nanosecond counts of every thread.
 */
import { cpuSecondsPrecise } from './processes.mjs'
import { median } from './stats.mjs'

/** Each contender's share of a round is taken in slices this long, alternating. */
export const SLICE_SECONDS = 0.5

/**
 * `contenders`: `{ id, server: { pids() } }`, loaded by `load(contender, seconds)` (which
 * resolves to `{ requests, seconds, errors, p99Ms }`). Resolves to each id's
 * `{ requestsPerSecond, cpuMicrosPerRequest, p99Ms, errors }`.
 */
export async function measureRound (contenders, load, seconds, round) {
  const totals = Object.fromEntries(contenders.map(({ id }) => [id, { cpu: 0, requests: 0, seconds: 0, errors: 0, p99s: [] }]))
  const slices = Math.max(1, Math.round(seconds / SLICE_SECONDS))
  for (let slice = 0; slice < slices; slice++) {
    const forward = (slice % 2 === 0) === (round % 2 === 0)
    for (const contender of forward ? contenders : [...contenders].reverse()) {
      const total = totals[contender.id]
      const before = cpuSecondsPrecise(contender.server.pids())
      const result = await load(contender, seconds / slices)
      total.cpu += cpuSecondsPrecise(contender.server.pids()) - before
      total.requests += result.requests
      total.seconds += result.seconds
      total.errors += result.errors
      total.p99s.push(result.p99Ms)
    }
  }
  return Object.fromEntries(Object.entries(totals).map(([id, t]) => [id, {
    requestsPerSecond: t.requests / t.seconds, cpuMicrosPerRequest: t.cpu / t.requests * 1e6, p99Ms: median(t.p99s), errors: t.errors
  }]))
}
