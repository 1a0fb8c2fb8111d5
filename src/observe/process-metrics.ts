import { readdirSync } from 'node:fs'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { ReadFamily, type MetricRegistry } from './metric-families.js'

/**
 * The process's own figures, read when `/metrics` is scraped, under the names prom-client's
 * default metrics used (with the gateway's prefix), so dashboards keep working: CPU, memory,
 * open files, event-loop delay, heap, Node's version. Nothing here runs per request; the
 * event-loop monitor samples every 10 ms, as prom-client's did.
 */
/** Registers them; returns what stops the event-loop delay monitor, the one part that runs between scrapes. */
export function registerProcessMetrics (registry: MetricRegistry, prefix: string): () => void {
  const gauge = (name: string, help: string, read: () => number, type: 'gauge' | 'counter' = 'gauge'): void => {
    new ReadFamily(`${prefix}${name}`, help, () => [[{}, read()]], registry, type) // eslint-disable-line no-new
  }
  gauge('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', () => process.cpuUsage().user / 1e6, 'counter')
  gauge('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', () => process.cpuUsage().system / 1e6, 'counter')
  gauge('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
    const { user, system } = process.cpuUsage()
    return (user + system) / 1e6
  }, 'counter')
  const startTime = Math.round((performance.timeOrigin) / 1000)
  gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => startTime)
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss())
  if (process.platform === 'linux') gauge('process_open_fds', 'Number of open file descriptors.', openFileDescriptors)
  const stopDelayMonitor = registerEventLoopDelay(registry, prefix)
  // prom-client's name; Node's undocumented _getActiveHandles is what it counted.
  const activeHandles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles
  if (activeHandles !== undefined) gauge('nodejs_active_handles_total', 'Total number of active handles.', () => activeHandles.call(process).length)
  gauge('nodejs_active_resources_total', 'Number of active resources that are currently keeping the event loop alive.', () => process.getActiveResourcesInfo().length)
  gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', () => process.memoryUsage().heapTotal)
  gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', () => process.memoryUsage().heapUsed)
  gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', () => process.memoryUsage().external)
  const [major, minor, patch] = process.versions.node.split('.')
  new ReadFamily(`${prefix}nodejs_version_info`, 'Node.js version info.', () => [[{ version: process.version, major: major!, minor: minor!, patch: patch! }, 1]], registry) // eslint-disable-line no-new
  return stopDelayMonitor
}

/**
 * Event-loop delay: the lag of the scrape itself, and a 10 ms-resolution monitor's figures since
 * the previous scrape (they include the resolution, as prom-client's did).
 */
function registerEventLoopDelay (registry: MetricRegistry, prefix: string): () => void {
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  // Read once per scrape, in the first family rendered; the others report the same snapshot.
  let snapshot = { mean: 0, min: 0, max: 0, stddev: 0, p50: 0, p90: 0, p99: 0 }
  const seconds = (ns: number): number => Number.isFinite(ns) ? ns / 1e9 : 0
  // As prom-client measured it: how late a setImmediate queued at the scrape runs (reported at the next one).
  let lastLag = 0
  new ReadFamily(`${prefix}nodejs_eventloop_lag_seconds`, 'Lag of event loop in seconds.', () => { // eslint-disable-line no-new
    const queuedAt = performance.now()
    setImmediate(() => { lastLag = (performance.now() - queuedAt) / 1000 })
    // No sample since the last scrape (two scrapers, within the 10 ms resolution): the histogram's
    // min is still its initial 2^63 ns, finite, so it would read as 292 years.
    snapshot = delay.count === 0
      ? { mean: 0, min: 0, max: 0, stddev: 0, p50: 0, p90: 0, p99: 0 }
      : { mean: seconds(delay.mean), min: seconds(delay.min), max: seconds(delay.max), stddev: seconds(delay.stddev), p50: seconds(delay.percentile(50)), p90: seconds(delay.percentile(90)), p99: seconds(delay.percentile(99)) }
    delay.reset()
    return [[{}, lastLag]]
  }, registry)
  for (const key of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const) {
    new ReadFamily(`${prefix}nodejs_eventloop_lag_${key}_seconds`, `The ${key} of the event loop delay since the last scrape, in seconds.`, () => [[{}, snapshot[key]]], registry) // eslint-disable-line no-new
  }
  return () => delay.disable()
}

function openFileDescriptors (): number {
  try {
    return readdirSync('/proc/self/fd').length - 1 // the directory being read is one of them
  } catch {
    return NaN
  }
}
