import t from 'tap'
import { CacheHistory } from '../../../src/observe/cache-history.js'
import type { CallRecord } from '../../../src/session/call-record.js'

const at = (minute: number, cache: CallRecord['cache'], input = 100, cached = 50): CallRecord =>
  ({ time: minute * 60_000 + 1234, model: 'm', upstream: 'default', status: 200, ttfbMs: 1, durationMs: 2, input, cached, output: 0, reasoning: 0, cache, missReason: null, fingerprint: null })

t.test('per-minute totals, oldest first, bounded to the last N minutes', async (t) => {
  const history = new CacheHistory(3)
  history.add(at(10, 'hit'))
  history.add(at(10, 'miss', 100, 0))
  history.add(at(12, 'partial'))
  history.add(at(11, 'n/a', 10, 0)) // ended out of order
  t.same(history.series().map((m) => [m.minute, m.requests, m.input_tokens, m.cached_tokens, m.hit, m.miss, m.partial, m['n/a']]), [
    [new Date(10 * 60_000).toISOString(), 2, 200, 50, 1, 1, 0, 0],
    [new Date(11 * 60_000).toISOString(), 1, 10, 0, 0, 0, 0, 1],
    [new Date(12 * 60_000).toISOString(), 1, 100, 50, 0, 0, 1, 0]
  ])
  history.add(at(13, 'hit'))
  t.same(history.series().map((m) => m.minute), [11, 12, 13].map((m) => new Date(m * 60_000).toISOString()), 'the oldest minute went')
  history.add(at(5, 'hit'))
  t.equal(history.series().length, 3, 'a call older than the ring is not counted')
})
