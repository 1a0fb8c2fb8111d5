import t from 'tap'
import { MetricRegistry } from '../../../src/observe/metric-families.js'
import { registerProcessMetrics } from '../../../src/observe/process-metrics.js'

/** The value of an unlabelled sample in an exposition page. */
function sample (page: string, name: string): number {
  const line = page.split('\n').find((l) => l.startsWith(`${name} `))
  if (line === undefined) throw new Error(`${name} is not on the page`)
  return Number(line.slice(name.length + 1))
}

/** Turns of the event loop until `ms` have passed on the clock: the delay monitor's 10 ms timer fires meanwhile. */
async function spinFor (ms: number): Promise<void> {
  const until = performance.now() + ms
  while (performance.now() < until) await new Promise((resolve) => setImmediate(resolve))
}

t.test('regression: once stopped, the event-loop delay monitor samples nothing (it ran on after the gateway closed)', async (t) => {
  const registry = new MetricRegistry()
  const stop = registerProcessMetrics(registry, 'gw_')
  t.teardown(stop)
  registry.render()
  await spinFor(60)
  t.ok(sample(registry.render(), 'gw_nodejs_eventloop_lag_max_seconds') > 0, 'running, it took samples between scrapes')
  stop()
  await spinFor(60)
  t.equal(sample(registry.render(), 'gw_nodejs_eventloop_lag_max_seconds'), 0, 'stopped, it took none')
})

t.test('regression: a scrape right after another (no event-loop sample in between) reports 0, not the histogram\'s empty min of 2^63 ns', async (t) => {
  const registry = new MetricRegistry()
  t.teardown(registerProcessMetrics(registry, 'gw_'))
  registry.render()
  const second = registry.render() // same tick: the delay monitor has taken no sample since the reset
  for (const key of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
    t.equal(sample(second, `gw_nodejs_eventloop_lag_${key}_seconds`), 0, key)
  }
})
