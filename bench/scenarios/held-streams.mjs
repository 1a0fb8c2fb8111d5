/**
 * (c) Many concurrent streams held open: each proxy, started fresh (so its peak RSS is this
 * scenario's), relays `streams` streams at once for `holdSeconds`, one event per stream every
 * `intervalMs`. Reports errors, peak RSS (VmHWM), the event latency under that load (overall,
 * and once every stream is open), and how long opening them all took. Each stream costs a
 * proxy two sockets, so the count is capped by the open-file limit, and the report says so.
 */
import { proxiesToRun, startNodeUpstream } from '../lib/contenders.mjs'
import { cpuSeconds, memoryBytes } from '../lib/processes.mjs'
import { percentile } from '../lib/stats.mjs'
import { runTimedStreams } from '../load/timed-streams.mjs'
import { startProxies, stopAll, turnOrder } from './proxies-in-front.mjs'

/** File descriptors a proxy process needs besides its two per stream. */
const SPARE_FILES = 100

export async function heldStreams (run) {
  const { rounds, streams: asked, holdSeconds, intervalMs, openPerSecond } = run.options.held
  const fitting = Math.floor((run.fileLimit - SPARE_FILES) / 2)
  const streams = Math.min(asked, fitting)
  if (streams < asked) {
    run.note(`(c) ran ${streams.toLocaleString('en')} streams, not ${asked.toLocaleString('en')}: a proxy holds two sockets per stream and the open-file limit here is ${run.fileLimit.toLocaleString('en')} (hard; raise it with \`ulimit -n\` as root or \`docker run --ulimit nofile=65536\`).`)
  }
  const events = Math.max(1, Math.round((holdSeconds * 1000) / intervalMs))
  const results = { asked, streams, holdSeconds, intervalMs, events, rounds, perProxy: {} }
  const available = proxiesToRun(run)
  for (let round = 0; round < rounds; round++) {
    for (const proxy of turnOrder(available, round)) {
      // A fresh upstream per proxy, on a new port: no TIME_WAIT left by the last one in the way.
      const upstream = await startNodeUpstream(run)
      let running = []
      try {
        running = await startProxies(run, upstream, [proxy])
        const { server } = running[0]
        const cpuBefore = cpuSeconds(server.pids())
        let sampledPeak = 0
        const sampler = setInterval(() => { sampledPeak = Math.max(sampledPeak, memoryBytes(server.pids()).rss) }, 500)
        let result
        try {
          result = await runTimedStreams({ origin: server.origin, streams, events, intervalMs, openPerSecond })
        } finally {
          clearInterval(sampler)
        }
        const memory = memoryBytes(server.pids())
        const row = {
          streams,
          errors: result.errors,
          errorKinds: result.errorKinds,
          peakRssMb: Math.max(memory.peak, sampledPeak) / 2 ** 20,
          p50Ms: percentile(result.latenciesUs, 50) / 1000,
          p99Ms: percentile(result.latenciesUs, 99) / 1000,
          steadyP99Ms: percentile(result.steadyLatenciesUs, 99) / 1000,
          allOpenSeconds: result.allOpenAfterMs / 1000,
          cpuSeconds: cpuSeconds(server.pids()) - cpuBefore,
          alive: server.running()
        }
        if (!row.alive) run.fail(`(c) ${proxy.label} died during the held streams; see ${server.logFile}`)
        run.progress(`(c) ${proxy.label}: ${streams} streams, ${row.errors} errors ${JSON.stringify(row.errorKinds)}, peak RSS ${row.peakRssMb.toFixed(0)} MB, event p99 ${row.p99Ms.toFixed(2)} ms`)
        ;(results.perProxy[proxy.id] ??= []).push(row)
      } catch (err) {
        run.fail(`(c) ${proxy.label}: ${err.message}`)
      } finally {
        await stopAll(running)
        await upstream.stop()
      }
    }
  }
  return results
}
