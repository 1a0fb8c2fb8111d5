import t from 'tap'
import { retryAfterMs, UpstreamHealth } from '../../../src/upstream/upstream-health.js'

t.test('ejected after N failures in a row, for a cooldown that doubles on repeated ejection, up to the cap', async (t) => {
  let now = 1_000
  const health = new UpstreamHealth({ failuresToEject: 3, cooldownMs: 5_000, maxCooldownMs: 12_000, now: () => now })
  t.equal(health.recordFailure(), 0)
  health.recordSuccess()
  t.equal(health.recordFailure(), 0, 'a success in between starts the count again')
  t.equal(health.recordFailure(), 0)
  t.equal(health.recordFailure(), 5_000, 'the third in a row ejects for the first cooldown')
  t.notOk(health.isHealthy())
  t.match(health.report(), { state: 'ejected', ejected_for_ms: 5_000 })
  now += 5_000
  t.ok(health.isHealthy(), 'tried again after the cooldown')
  t.equal(health.recordFailure(), 10_000, 'on probation one failure ejects again, for twice as long')
  now += 10_000
  t.equal(health.recordFailure(), 12_000, 'capped')
  now += 12_000
  health.recordSuccess()
  t.equal(health.recordFailure(), 0, 'a success clears the probation')
})

t.test('regression: a cooldown runs on a monotonic clock: the wall clock stepped back (NTP, a resumed VM) does not stretch an ejection', async (t) => {
  const wallClock = Date.now
  let step = 0
  Date.now = () => wallClock() + step
  t.teardown(() => { Date.now = wallClock })
  const health = new UpstreamHealth({ failuresToEject: 1, cooldownMs: 20, maxCooldownMs: 20 })
  const ejectedAt = performance.now()
  t.equal(health.recordFailure(), 20)
  step = -60 * 60 * 1000 // the wall clock is set an hour back
  while (performance.now() - ejectedAt <= 20) await new Promise((resolve) => setTimeout(resolve, 1))
  t.ok(health.isHealthy(), 'tried again once its cooldown has passed')
  t.match(health.report(), { state: 'healthy' })
})

t.test("a 429's retry-after is the least cooldown", async (t) => {
  const health = new UpstreamHealth({ failuresToEject: 1, cooldownMs: 1_000, maxCooldownMs: 60_000, now: () => 0 })
  t.equal(health.recordFailure(30_000), 30_000)
})

t.test('retry-after: seconds or an HTTP date', async (t) => {
  const h = (value: string): Buffer[] => [Buffer.from('Retry-After'), Buffer.from(value)]
  t.equal(retryAfterMs(h('7')), 7_000)
  t.equal(retryAfterMs(h(new Date(61_000).toUTCString()), 1_000), 60_000)
  t.equal(retryAfterMs(h('soon')), 0)
  t.equal(retryAfterMs([]), 0)
})

t.test('retry-after is honoured for a day at most, in either form: an upstream (or its clock) cannot eject itself for good', async (t) => {
  const h = (value: string): Buffer[] => [Buffer.from('retry-after'), Buffer.from(value)]
  const DAY = 24 * 60 * 60 * 1000
  t.equal(retryAfterMs(h('999999999')), DAY)
  t.equal(retryAfterMs(h('Fri, 31 Dec 9999 23:59:59 GMT'), 0), DAY, 'a date far ahead')
  t.equal(retryAfterMs(h(new Date(2 * DAY).toUTCString()), 0), DAY, 'a date two days ahead')
  t.equal(retryAfterMs(h(new Date(0).toUTCString()), 1_000), 0, 'a date in the past')
  const health = new UpstreamHealth({ failuresToEject: 1, cooldownMs: 1_000, maxCooldownMs: 60_000, now: () => 0 })
  t.equal(health.recordFailure(retryAfterMs(h('Fri, 31 Dec 9999 23:59:59 GMT'), 0)), DAY, 'so the ejection lasts a day')
})
