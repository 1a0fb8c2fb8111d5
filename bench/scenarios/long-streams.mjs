/**
 * (b) Long streams: a few concurrent streams whose events the upstream writes over seconds,
 * each carrying its send time. Per event: receive time minus send time, through each proxy
 * and straight to the upstream (`direct`), so a proxy's added latency per event is its
 * figure minus direct's.
 */
import { startNodeUpstream } from '../lib/contenders.mjs'
import { percentile } from '../lib/stats.mjs'
import { runTimedStreams } from '../load/timed-streams.mjs'
import { keepCorrect, startProxies, stopAll, turnOrder } from './proxies-in-front.mjs'

export const DIRECT = { id: 'direct', label: 'direct (no proxy)' }

export async function longStreams (run) {
  const { rounds, streams, events, intervalMs } = run.options.long
  const upstream = await startNodeUpstream(run)
  const results = { streams, events, intervalMs, rounds, perProxy: {} }
  let running = []
  try {
    running = await keepCorrect(run, '(b) long streams', await startProxies(run, upstream), async (server) => {
      const check = await runTimedStreams({ origin: server.origin, streams: 2, events: 3, intervalMs: 10 })
      if (check.errors > 0) throw new Error(`timed stream: ${JSON.stringify(check.errorKinds)}`)
    })
    const contenders = [{ proxy: DIRECT, server: upstream }, ...running]
    for (let round = 0; round < rounds; round++) {
      for (const { proxy, server } of turnOrder(contenders, round)) {
        const result = await runTimedStreams({ origin: server.origin, streams, events, intervalMs })
        const row = {
          p50Ms: percentile(result.latenciesUs, 50) / 1000,
          p99Ms: percentile(result.latenciesUs, 99) / 1000,
          events: result.latenciesUs.length,
          errors: result.errors,
          errorKinds: result.errorKinds
        }
        run.progress(`(b) round ${round + 1}/${rounds} ${proxy.label}: event latency p50 ${row.p50Ms.toFixed(3)} ms, p99 ${row.p99Ms.toFixed(3)} ms, ${row.errors} errors`)
        ;(results.perProxy[proxy.id] ??= []).push(row)
      }
    }
  } finally {
    await stopAll(running)
    await upstream.stop()
  }
  // Added latency: a proxy's per-event latency minus the direct connection's in the same round.
  for (const rows of Object.values(results.perProxy)) {
    rows.forEach((row, round) => {
      const direct = results.perProxy[DIRECT.id][round]
      row.addedP50Ms = row.p50Ms - direct.p50Ms
      row.addedP99Ms = row.p99Ms - direct.p99Ms
    })
  }
  return results
}
