/**
 * The `input` history as the prefix tap reads it: the top-level items' sizes, however the body
 * is cut, against a reference that finds them by recursive descent; the bytes of the fields
 * before it; and when a history goes on from the previous call's, and if not, how much of it
 * the two could share.
 */
import t from 'tap'
import { sharedInputBytes, type InputHistory } from '../../../src/observe/input-history.js'
import { PrefixFingerprint } from '../../../src/observe/prefix-fingerprint.js'
import { historyOf, recordOf } from '../../support/input-histories.js'
import { randomBody, randomFrom, referenceInputSizes } from '../../support/json-bodies.js'

const SEED = Number(process.env.PREFIX_SEED ?? 20261204)
const BODIES = 400

function tapped (chunks: Buffer[]): InputHistory | undefined {
  const tap = new PrefixFingerprint()
  for (const chunk of chunks) tap.push(chunk)
  return tap.result()?.input
}

/** What the tap found of a history, but the fields' bytes (the property test's reference does not count them). */
const itemsOf = (history: InputHistory | undefined): unknown => history === undefined ? undefined : { ...history, prefixBytes: 0 }

const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))

t.test('random bodies cut anywhere give the reference items', async (t) => {
  const random = randomFrom(SEED)
  let judged = 0
  for (let n = 0; n < BODIES; n++) {
    const bytes = randomBody(random)
    const sizes = referenceInputSizes(bytes)
    const expected = sizes === undefined ? undefined : historyOf(sizes)
    if (expected !== undefined) judged++
    for (let cut = 0; cut <= bytes.length; cut++) {
      const got = itemsOf(tapped([bytes.subarray(0, cut), bytes.subarray(cut)]))
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        t.fail(`seed ${SEED}, body ${n}, cut at ${cut}: got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}: ${bytes.toString()}`)
        return
      }
    }
  }
  t.ok(judged > 20, `${judged} of ${BODIES} bodies had a countable input`)
})

t.test('what is and is not a history', async (t) => {
  const item = { role: 'user', content: 'a "quoted" ] bracket' }
  t.same(tapped([body({ model: 'm', input: [item, [1, 2]] })]), historyOf([JSON.stringify(item).length, 5], 3), 'objects and arrays, with brackets inside strings')
  t.same(tapped([Buffer.from(`{"input" : [ ${JSON.stringify(item)} ,\n ${JSON.stringify(item)} ] }`)]), historyOf([JSON.stringify(item).length, JSON.stringify(item).length]), 'whitespace between items is no part of them')
  t.same(tapped([body({ input: [] })]), historyOf([]), 'an empty history')
  t.same(tapped([body({ input: 'a "question"' })]), historyOf([JSON.stringify('a "question"').length]), 'a string input is one item, its quotes included')
  t.equal(tapped([body({ input: ['a', item] })]), undefined, 'nor does an array with a string item')
  t.equal(tapped([body({ previous_response_id: 'resp_1', input: [item] })]), undefined, 'previous_response_id: input holds only the new turn')
  t.equal(tapped([body({ input: [item], conversation: { id: 'conv_1' } })]), undefined, 'conversation: likewise, wherever it stands')
  t.equal(tapped([body({ conversation: 'conv_1', previous_response_id: null, input: [item] })]), undefined, 'a null previous_response_id leaves a conversation continued')
  t.equal(tapped([body({ previous_response_id: 'resp_1', conversation: null, input: [item] })]), undefined, 'and a null conversation a previous response')
  t.same(tapped([body({ previous_response_id: null, input: [item] })]), historyOf([JSON.stringify(item).length]), 'a null previous_response_id continues nothing')
  t.same(tapped([Buffer.from(`{"inp\\u0075t":[${JSON.stringify(item)}]}`)]), historyOf([JSON.stringify(item).length]), 'an escaped key is the key it spells')
  t.same(tapped([body({ input: [item, item] }).subarray(0, -1), Buffer.from(',"input":[[]]}')]), historyOf([2]), 'of two input keys the last counts')
  t.equal(tapped([body({ model: 'm', input: [item] })].map((b) => b.subarray(0, -2))), undefined, 'a body cut short has no history')
})

t.test('the fields before the input: the fingerprinted ones, as written, not `type`', async (t) => {
  const tools = [{ type: 'function', name: 'shell' }]
  const fields = JSON.stringify('gpt-5').length + JSON.stringify('Be terse.').length + JSON.stringify(tools).length + JSON.stringify({ effort: 'high' }).length
  t.equal(tapped([body({ type: 'response.create', model: 'gpt-5', instructions: 'Be terse.', input: [], tools, reasoning: { effort: 'high' }, stream: true })])?.prefixBytes, fields)
  t.equal(tapped([body({ instructions: 'an earlier one', input: [] }).subarray(0, -1), Buffer.from(',"instructions":"Be terse."}')])?.prefixBytes, JSON.stringify('Be terse.').length, 'of a repeated field the last counts')
})

t.test('a history goes on from the previous one when it begins with it; otherwise what both could share is bounded', async (t) => {
  const recorded = recordOf(historyOf([30, 40, 50]))
  t.same(recorded.inputCheckpoints?.length, 3, 'digests after 1, 2 and all 3 items')
  t.equal(sharedInputBytes(historyOf([30, 40, 50]), recorded), undefined, 'the same history')
  t.equal(sharedInputBytes(historyOf([30, 40, 50, 60, 70]), recorded), undefined, 'items appended')
  t.equal(sharedInputBytes(historyOf([30, 40]), recorded), 70, 'fewer items: at most all of them')
  t.equal(sharedInputBytes(historyOf([80, 60]), recorded), 0, 'compacted into a summary: nothing')
  t.equal(sharedInputBytes(historyOf([40, 50, 60]), recorded), 0, 'the oldest item dropped: nothing')
  t.equal(sharedInputBytes(historyOf([30, 41, 50, 60]), recorded), 30, 'the second item changed: the first')
  t.equal(sharedInputBytes(historyOf([30, 40, 51, 60]), recorded), 70, 'the third changed: the first two')
  t.equal(sharedInputBytes(undefined, recorded), undefined, 'no history read for this call')
  t.equal(sharedInputBytes(historyOf([1]), {}), undefined, 'none recorded for the previous call')
  t.equal(sharedInputBytes(historyOf([1]), { inputItems: 3, inputCheckpoints: [1, 2, 3, 4] }), undefined, 'a record this code did not write: more digests than counts')
  t.equal(sharedInputBytes(historyOf([1]), { inputItems: 3, inputCheckpoints: [] }), undefined, 'none')
  t.equal(sharedInputBytes(historyOf([1]), { inputItems: 1.5, inputCheckpoints: [1] }), undefined, 'a count that is none')
  t.equal(sharedInputBytes(historyOf([]), recordOf(historyOf([]))), undefined, 'from an empty history')
})

t.test('a long history: found to within a power of two, never under what is shared', async (t) => {
  const sizes = Array.from({ length: 1000 }, (_, k) => 100 + (k % 7))
  const recorded = recordOf(historyOf(sizes))
  t.equal(recorded.inputCheckpoints?.length, 11, '1, 2, 4, … 512, and all 1,000')
  const sum = (n: number): number => sizes.slice(0, n).reduce((a, b) => a + b, 0)
  for (const changedAt of [0, 1, 2, 3, 5, 100, 511, 512, 513, 999]) {
    const edited = sizes.map((size, k) => k === changedAt ? size + 1 : size)
    const bound = sharedInputBytes(historyOf(edited), recorded)!
    t.ok(bound >= sum(changedAt), `item ${changedAt} changed: ${bound} bytes at most, the ${changedAt} items before it included`)
    t.ok(bound <= sum(2 * changedAt + 1), 'and less than twice as many items')
  }
  t.equal(sharedInputBytes(historyOf([...sizes, 5, 6]), recorded), undefined, 'appended to')
})

t.test('a record stops at the first digest that covers the limit with the fields: sharing that much, a call is not judged', async (t) => {
  const recorded = recordOf(historyOf([3000, 2000, 1000], 1000), 4608)
  t.same(recorded.inputCheckpoints?.length, 2, 'after 1 item (4,000 bytes with the fields), after 2 (6,000): cut there')
  t.equal(sharedInputBytes(historyOf([3000, 2000, 999], 1000), recorded), undefined, 'the two first items shared: the limit is')
  t.equal(sharedInputBytes(historyOf([3000, 2001], 1000), recorded), 3000, 'the second changed: the first shared')
  t.equal(sharedInputBytes(historyOf([3000], 1000), recorded), 3000, 'fewer items than the cut: all of them')
  t.equal(sharedInputBytes(historyOf([2999], 1000), recorded), 0)
  t.same(recordOf(historyOf([10, 20], 5000), 4608), { inputItems: undefined, inputCheckpoints: undefined }, 'fields over the limit: nothing is kept')
})
