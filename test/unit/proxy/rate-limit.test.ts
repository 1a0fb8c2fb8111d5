import t from 'tap'
import { RateLimiter } from '../../../src/proxy/rate-limit.js'

t.test('each client gets its allowance per window, then a 429 with whole seconds to wait', async (t) => {
  let now = 1_000_000
  const limiter = new RateLimiter(2, 60_000, () => now)
  t.equal(limiter.take('a'), undefined)
  t.equal(limiter.take('a'), undefined)
  const limited = limiter.take('a')
  t.equal(limited?.status, 429)
  t.equal(limited?.code, 'rate_limit_exceeded')
  t.equal(limited?.headers['retry-after'], '60')
  t.equal(limiter.take('b'), undefined, 'another client has its own allowance')
  now += 30_500
  t.equal(limiter.take('a')?.headers['retry-after'], '30', 'retry-after counts down')
  now += 30_000
  t.equal(limiter.take('a'), undefined, 'a new window begins once the old one ends')
})

t.test('regression: past 10,000 live clients, a new client does not cost a scan of them all', async (t) => {
  // A flood of made-up keys (pass-through mode, where each is a client) kept 10,000+ windows
  // live, and every further new client swept the whole map, finding nothing to drop.
  let now = 1_000_000
  const limiter = new RateLimiter(1, 60_000, () => now)
  for (let i = 0; i < 20_000; i++) limiter.take(`flood-${i}`)
  const entries = Map.prototype[Symbol.iterator]
  let steps = 0
  Map.prototype[Symbol.iterator] = function (this: Map<unknown, unknown>) {
    const inner = entries.call(this)
    return Object.assign(Object.create(inner) as typeof inner, { next: () => { steps++; return inner.next() } })
  }
  let refused = 0
  try {
    for (let i = 0; i < 1000; i++) if (limiter.take(`new-${i}`) !== undefined) refused++
  } finally {
    Map.prototype[Symbol.iterator] = entries
  }
  t.equal(refused, 0, 'each new client has its allowance')
  t.ok(steps <= 2 * 1000, `1,000 new clients looked at ${steps} windows, not 1,000 × 20,000`)

  now += 60_000
  t.equal(limiter.take('flood-0'), undefined, 'an ended window is renewed')
  t.equal(limiter.take('flood-0')?.status, 429, 'and counts again')
  t.equal(limiter.take('after-the-minute'), undefined, 'a new client once the flood\'s windows have ended')
})
