import t from 'tap'
import { cacheOutcome, missReason, type CallFacts } from '../../../src/observe/cache-outcome.js'
import type { CallRecord } from '../../../src/session/call-record.js'

const rules = { minTokens: 1024, idleMs: 300_000 }
const tokens = (input: number, cached: number) => ({ input, cached, output: 1, reasoning: 0 })

t.test('outcome: hit from half the input cached, partial below, miss for none of a long prompt, n/a otherwise', async (t) => {
  t.equal(cacheOutcome(tokens(2000, 1000), rules), 'hit')
  t.equal(cacheOutcome(tokens(2000, 999), rules), 'partial')
  t.equal(cacheOutcome(tokens(2000, 0), rules), 'miss')
  t.equal(cacheOutcome(tokens(1024, 0), rules), 'miss', 'the minimum itself can be cached')
  t.equal(cacheOutcome(tokens(1023, 0), rules), 'n/a')
  t.equal(cacheOutcome(undefined, rules), 'n/a', 'no usage reported')
  t.equal(cacheOutcome(tokens(0, 0), rules), 'n/a')
})

const previous: CallRecord = { time: 1_000_000, model: 'm', upstream: 'default', status: 200, ttfbMs: 5, durationMs: 1000, input: 2000, cached: 0, output: 1, reasoning: 0, cache: 'miss', missReason: 'first_request', fingerprint: 'aaaa' }
const call = (over: Partial<CallFacts>): CallFacts => ({ time: 1_002_000, upstream: 'default', fingerprint: 'aaaa', tokens: tokens(2000, 0), ...over })

t.test('miss reason: the first that applies', async (t) => {
  t.equal(missReason(call({}), undefined, rules), 'first_request')
  t.equal(missReason(call({ upstream: 'azure', fingerprint: 'bbbb', time: 9e9 }), previous, rules), 'rebound', 'rebound before prefix_changed and idle')
  t.equal(missReason(call({ fingerprint: 'bbbb', time: 9e9 }), previous, rules), 'prefix_changed', 'prefix_changed before idle')
  t.equal(missReason(call({ time: previous.time + previous.durationMs + rules.idleMs + 1 }), previous, rules), 'idle')
  t.equal(missReason(call({ time: previous.time + previous.durationMs + rules.idleMs }), previous, rules), 'unexplained', 'idle means more than the setting, counted from the end of the previous call')
  t.equal(missReason(call({ fingerprint: null }), previous, rules), 'unexplained', 'an unknown prefix is not a changed one')
  t.equal(missReason(call({ fingerprint: 'bbbb' }), { ...previous, fingerprint: null }, rules), 'unexplained')
})
