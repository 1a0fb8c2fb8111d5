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
