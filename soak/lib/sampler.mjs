/**
 * One sample of the gateway process: what the kernel says (/proc/PID: resident memory, open
 * file descriptors, CPU time) and what its own /metrics says (V8 heap, event-loop lag, active
 * handles, the active-streams and sessions gauges, error counters).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { errorCount } from './tally.mjs'

const MB = 1024 * 1024
const TICKS_PER_SECOND = 100

/** Reads /proc/PID: resident memory (bytes), open fds, CPU seconds (user + system). */
export function readProc (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0)
  const fds = readdirSync(`/proc/${pid}/fd`).length
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the ")" that closes the command name: utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  return { rssBytes: rssKb * 1024, fds, cpuSeconds }
}

/** Runtime families (prom-client's defaults): their label sets are Node's (a GC kind appears on its first use), not the gateway's. */
const RUNTIME_FAMILY = /^session_gateway_(nodejs|process)_/

/**
 * Prometheus text → { values: Map(name → sum over its series), byLabel: Map(`name{labels}` → value),
 * series: the gateway's own series (runtime families left out), the number that grows if a label leaks ids }.
 * Enough for gauges and counters; histogram buckets are only counted as series.
 */
export function parseMetrics (text) {
  const values = new Map()
  const byLabel = new Map()
  let series = 0
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    const key = line.slice(0, space)
    const value = Number(line.slice(space + 1))
    const brace = key.indexOf('{')
    const name = brace === -1 ? key : key.slice(0, brace)
    if (!RUNTIME_FAMILY.test(name)) series++
    byLabel.set(key, value)
    values.set(name, (values.get(name) ?? 0) + value)
  }
  return { values, byLabel, series }
}

export function createSampler ({ pid, port, tally }) {
  // A new connection per scrape, closed after it, so the scrape itself holds no fd between samples.
  const agent = new Agent({ pipelining: 1 })
  let previous
  return {
    async sample (phase) {
      const now = performance.now()
      const proc = readProc(pid)
      const res = await request(`http://127.0.0.1:${port}/metrics`, { dispatcher: agent, reset: true })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
      const { values, byLabel, series } = parseMetrics(text)
      const metric = (name) => values.get(`session_gateway_${name}`)
      const elapsedS = previous === undefined ? 0 : (now - previous.at) / 1000
      const sample = {
        at: now,
        phase,
        rssMb: proc.rssBytes / MB,
        heapUsedMb: (metric('nodejs_heap_size_used_bytes') ?? metric('process_heap_bytes') ?? NaN) / MB,
        externalMb: (metric('nodejs_external_memory_bytes') ?? NaN) / MB,
        fds: proc.fds,
        handles: metric('nodejs_active_handles_total') ?? NaN,
        activeStreams: metric('active_streams') ?? 0,
        activeHttp: byLabel.get('session_gateway_active_streams{transport="http"}') ?? 0,
        activeWebSocket: byLabel.get('session_gateway_active_streams{transport="websocket"}') ?? 0,
        sessions: metric('sessions') ?? NaN,
        series,
        // prom-client resets its event-loop delay histogram at every scrape: these cover the interval.
        lagP99Ms: (metric('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
        lagMaxMs: (metric('nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000,
        cpuPercent: previous === undefined || elapsedS === 0 ? NaN : ((proc.cpuSeconds - previous.cpuSeconds) / elapsedS) * 100,
        finishedPerS: elapsedS === 0 ? NaN : tally.finishedSinceSample / elapsedS,
        inFlight: tally.inFlight,
        errors: errorCount(tally),
        requestsTotal: metric('requests_total') ?? NaN,
        upstreamErrors: metric('upstream_errors_total') ?? NaN,
        clientAborts: metric('client_aborts_total') ?? NaN
      }
      tally.finishedSinceSample = 0
      previous = { at: now, cpuSeconds: proc.cpuSeconds }
      return sample
    },
    close: () => agent.close()
  }
}
