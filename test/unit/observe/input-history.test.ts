/**
 * The `input` history as the prefix tap reads it: the top-level items' sizes, however the body
 * is cut, against a reference that finds them by recursive descent; and when a history goes on
 * from the previous call's, and when it was rewritten.
 */
import t from 'tap'
import { InputItems, rewritesHistory, type InputHistory } from '../../../src/observe/input-history.js'
import { PrefixFingerprint } from '../../../src/observe/prefix-fingerprint.js'
import { randomBody, randomFrom, referenceInputSizes } from '../../support/json-bodies.js'

const SEED = Number(process.env.PREFIX_SEED ?? 20261204)
const BODIES = 400

function tapped (chunks: Buffer[]): InputHistory | undefined {
  const tap = new PrefixFingerprint()
  for (const chunk of chunks) tap.push(chunk)
  return tap.result()?.input
}

/** The history of items of these sizes, as the tap would count them. */
function historyOf (sizes: readonly number[]): InputHistory {
  const items = new InputItems()
  let at = 0
  for (const size of sizes) {
    items.start(at)
    at += size
    items.end(at)
    at += 2 // a comma and a space: not part of any item
  }
  return items.history()!
}

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
      const got = tapped([bytes.subarray(0, cut), bytes.subarray(cut)])
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
  t.same(tapped([body({ model: 'm', input: [item, [1, 2]] })]), historyOf([JSON.stringify(item).length, 5]), 'objects and arrays, with brackets inside strings')
  t.same(tapped([Buffer.from(`{"input" : [ ${JSON.stringify(item)} ,\n ${JSON.stringify(item)} ] }`)]), historyOf([JSON.stringify(item).length, JSON.stringify(item).length]), 'whitespace between items is no part of them')
  t.same(tapped([body({ input: [] })]), historyOf([]), 'an empty history')
  t.equal(tapped([body({ input: 'a question' })]), undefined, 'a string input has no items')
  t.equal(tapped([body({ input: ['a', item] })]), undefined, 'nor does an array with a string item')
  t.equal(tapped([body({ previous_response_id: 'resp_1', input: [item] })]), undefined, 'previous_response_id: input holds only the new turn')
  t.equal(tapped([body({ input: [item], conversation: { id: 'conv_1' } })]), undefined, 'conversation: likewise, wherever it stands')
  t.same(tapped([body({ previous_response_id: null, input: [item] })]), historyOf([JSON.stringify(item).length]), 'a null previous_response_id continues nothing')
  t.same(tapped([Buffer.from(`{"inp\\u0075t":[${JSON.stringify(item)}]}`)]), historyOf([JSON.stringify(item).length]), 'an escaped key is the key it spells')
  t.same(tapped([body({ input: [item, item] }).subarray(0, -1), Buffer.from(',"input":[[]]}')]), historyOf([2]), 'of two input keys the last counts')
  t.equal(tapped([body({ model: 'm', input: [item] })].map((b) => b.subarray(0, -2))), undefined, 'a body cut short has no history')
})

t.test('a history goes on from the previous one when it begins with it', async (t) => {
  const before = historyOf([30, 40, 50])
  const recorded = { inputItems: before.items, inputDigest: before.prefixes[before.items] }
  t.equal(rewritesHistory(historyOf([30, 40, 50]), recorded), false, 'the same history')
  t.equal(rewritesHistory(historyOf([30, 40, 50, 60, 70]), recorded), false, 'items appended')
  t.equal(rewritesHistory(historyOf([30, 40]), recorded), true, 'fewer items')
  t.equal(rewritesHistory(historyOf([80, 60]), recorded), true, 'compacted into a summary')
  t.equal(rewritesHistory(historyOf([40, 50, 60]), recorded), true, 'the oldest item dropped')
  t.equal(rewritesHistory(historyOf([30, 41, 50, 60]), recorded), true, 'an item changed in the middle')
  t.equal(rewritesHistory(undefined, recorded), false, 'no history read for this call')
  t.equal(rewritesHistory(historyOf([1]), {}), false, 'none recorded for the previous call')
  t.equal(rewritesHistory(historyOf([]), { inputItems: 0, inputDigest: historyOf([]).prefixes[0] }), false, 'from an empty history')
})
