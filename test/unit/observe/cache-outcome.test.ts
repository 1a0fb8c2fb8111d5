import t from 'tap'
import { cacheOutcome, judgedInputBytes, missReason, type CallFacts } from '../../../src/observe/cache-outcome.js'
import { historyOf, recordOf } from '../../support/input-histories.js'
import type { CallRecord } from '../../../src/session/call-record.js'

const rules = { minTokens: 1024, idleMs: 300_000 }
/** Where the recorder cuts a record's input digests: the most bytes two calls may share and be judged. */
const limit = judgedInputBytes(rules)
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

/** An input of `bytes` bytes of prose beginning with `label`, written as a string. */
const text = (label: string, bytes: number): string => JSON.stringify(`${label} ${'the quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(bytes / 45))}`.slice(0, bytes - 2))

t.test('miss reason: a changed input whose shared part is too short to cache, after a changed prefix and before an idle gap', async (t) => {
  // 1,000 bytes of fingerprinted fields, then the input; 2,000 tokens for 8,000 bytes: 4 bytes a token.
  const recorded: CallRecord = { ...previous, ...recordOf(historyOf(text('one', 7000), 1000), limit) }
  const changed = historyOf(text('two', 7000), 1000)
  t.equal(missReason(call({ input: historyOf(text('one', 7000), 1000) }), recorded, rules), 'unexplained', 'the same input')
  t.equal(missReason(call({ input: changed }), recorded, rules), 'input_changed', 'another: some 250 tokens shared')
  t.equal(missReason(call({ input: changed, time: 9e9 }), recorded, rules), 'input_changed', 'before idle')
  t.equal(missReason(call({ input: changed, fingerprint: 'bbbb' }), recorded, rules), 'prefix_changed', 'after prefix_changed')
  t.equal(missReason(call({ input: changed }), previous, rules), 'unexplained', 'a previous call whose input was not read')
  t.equal(missReason(call({ input: changed, fingerprint: null }), { ...recorded, fingerprint: null }, rules), 'unexplained', 'nor a prefix')
})

t.test('miss reason: a changed input is not the reason when the part both prompts share could be cached', async (t) => {
  const doc = 'the quick brown fox jumps over the lazy dog. '.repeat(160)
  const question = (q: string): string => JSON.stringify([{ role: 'user', content: `${doc}Q: ${q}?` }])
  const asked: CallRecord = { ...previous, ...recordOf(historyOf(question('a'), 100), limit) }
  t.equal(missReason(call({ input: historyOf(question('bb'), 100) }), asked, rules), 'unexplained', 'one message, a long document and another question: the document is shared')
  const grown: CallRecord = { ...previous, ...recordOf(historyOf(JSON.stringify(doc), 100), limit) }
  t.equal(missReason(call({ input: historyOf(JSON.stringify(`${doc} And then?`), 100) }), grown, rules), 'unexplained', 'a string input that grew')
  const shortRecord: CallRecord = { ...previous, ...recordOf(historyOf(text('same start, then one', 7000), 1000), limit) }
  t.equal(missReason(call({ input: historyOf(text('same start, then two', 7000), 1000) }), shortRecord, rules), 'input_changed', 'parting at byte 18, counted as 1,063 bytes shared: 266 tokens')
  // A 500 kB image as base64: 2,300 tokens for 503 kB would count 2,963 shared bytes as 14 tokens.
  const image: CallRecord = { ...previous, ...recordOf(historyOf(text('one', 500_000), 2900), limit) }
  t.equal(missReason(call({ input: historyOf(text('two', 500_000), 2900), tokens: tokens(2300, 0) }), image, rules), 'input_changed', 'counted at prose\'s 4 bytes a token: 2,963 bytes, 741 tokens shared')
  const dense: CallRecord = { ...previous, ...recordOf(historyOf(text('one', 1000), 2000), limit) }
  t.equal(missReason(call({ input: historyOf(text('two', 1000), 2000), tokens: tokens(1500, 0) }), dense, rules), 'unexplained', 'a call of 2 bytes a token by its own usage: 2,063 bytes are 1,031 tokens')
  t.equal(missReason(call({ input: historyOf(text('two', 1000), 2000), tokens: tokens(1100, 0) }), dense, rules), 'input_changed', 'of 2.7 bytes a token: 756, under the line')
  const small: CallRecord = { ...previous, ...recordOf(historyOf(text('one', 3000), 100), limit) }
  t.equal(missReason(call({ input: historyOf(text('two', 3000), 100), tokens: tokens(8000, 0) }), small, rules), 'unexplained', 'more than a token for every 2 bytes: a file or image by id holds what the body does not show')
})
