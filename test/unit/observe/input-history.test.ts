/**
 * The `input` as the prefix tap reads it: its first bytes and its length, however the body is
 * cut, against a reference that finds the value by recursive descent; the bytes of the fields
 * before it; and when an input goes on from the previous call's, and if not, how much of it the
 * two could share.
 */
import t from 'tap'
import { INPUT_HEAD_BYTES, sharedInputBytes, type InputHistory } from '../../../src/observe/input-history.js'
import { PrefixFingerprint } from '../../../src/observe/prefix-fingerprint.js'
import { historyOf, recordOf } from '../../support/input-histories.js'
import { randomBody, randomFrom, referenceInput } from '../../support/json-bodies.js'

const SEED = Number(process.env.PREFIX_SEED ?? 20261204)
const BODIES = 400

function tapped (chunks: Buffer[]): InputHistory | undefined {
  const tap = new PrefixFingerprint()
  for (const chunk of chunks) tap.push(chunk)
  return tap.result()?.input
}

const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))
/** What the tap kept, as text (latin1, so any byte compares), without the fields' bytes. */
const keptOf = (history: InputHistory | undefined): unknown => history === undefined ? undefined : { head: history.head.toString('latin1'), bytes: history.bytes }

t.test('random bodies cut anywhere give the reference input', async (t) => {
  const random = randomFrom(SEED)
  let judged = 0
  for (let n = 0; n < BODIES; n++) {
    const bytes = randomBody(random)
    const reference = referenceInput(bytes, INPUT_HEAD_BYTES)
    const expected = reference === undefined ? undefined : { head: reference.head.toString('latin1'), bytes: reference.bytes }
    if (expected !== undefined) judged++
    for (let cut = 0; cut <= bytes.length; cut++) {
      const got = keptOf(tapped([bytes.subarray(0, cut), bytes.subarray(cut)]))
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        t.fail(`seed ${SEED}, body ${n}, cut at ${cut}: got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}: ${bytes.toString()}`)
        return
      }
    }
  }
  t.ok(judged > 20, `${judged} of ${BODIES} bodies had an input that is read`)
})

t.test('what is and is not an input read', async (t) => {
  const items = [{ role: 'user', content: 'a "quoted" ] bracket' }, [1, 2]]
  t.same(keptOf(tapped([body({ model: 'm', input: items })])), { head: JSON.stringify(items), bytes: JSON.stringify(items).length }, 'an array, as written')
  t.same(keptOf(tapped([body({ input: 'a "question"' })])), { head: '"a \\"question\\""', bytes: 16 }, 'a string, its quotes included')
  const long = 'x'.repeat(10_000)
  t.same(keptOf(tapped([body({ input: [long] })])), { head: `["${long}`.slice(0, INPUT_HEAD_BYTES), bytes: long.length + 4 }, 'a long one: its first bytes kept, all counted')
  t.equal(tapped([body({ input: { role: 'user' } })]), undefined, 'an object is none')
  t.equal(tapped([body({ previous_response_id: 'resp_1', input: items })]), undefined, 'previous_response_id: input holds only the new turn')
  t.equal(tapped([body({ input: items, conversation: { id: 'conv_1' } })]), undefined, 'conversation: likewise, wherever it stands')
  t.equal(tapped([body({ prompt: { id: 'pmpt_1' }, input: items })]), undefined, 'a stored prompt: the upstream\'s text is in the prompt')
  t.equal(tapped([body({ conversation: 'conv_1', previous_response_id: null, input: items })]), undefined, 'a null previous_response_id leaves a conversation continued')
  t.equal(tapped([body({ previous_response_id: 'resp_1', conversation: null, input: items })]), undefined, 'and a null conversation a previous response')
  t.same(keptOf(tapped([body({ previous_response_id: null, prompt: null, input: 'q' })])), { head: '"q"', bytes: 3 }, 'null names nothing')
  t.same(keptOf(tapped([Buffer.from('{"inp\\u0075t":"q"}')])), { head: '"q"', bytes: 3 }, 'an escaped key is the key it spells')
  t.same(keptOf(tapped([body({ input: 'first' }).subarray(0, -1), Buffer.from(',"input":"last"}')])), { head: '"last"', bytes: 6 }, 'of two input keys the last counts')
  t.equal(tapped([body({ model: 'm', input: 'q' })].map((b) => b.subarray(0, -2))), undefined, 'a body cut short has none')
  const typeOnly = new PrefixFingerprint({ typeOnly: true })
  typeOnly.push(body({ input: 'q', type: 'response.create' }))
  t.equal(typeOnly.result(), undefined, 'a type-only tap reads none')
})

t.test('the fields before the input: the fingerprinted ones, as written, not `type`', async (t) => {
  const tools = [{ type: 'function', name: 'shell' }]
  const fields = JSON.stringify('gpt-5').length + JSON.stringify('Be terse.').length + JSON.stringify(tools).length + JSON.stringify({ effort: 'high' }).length
  t.equal(tapped([body({ type: 'response.create', model: 'gpt-5', instructions: 'Be terse.', input: [], tools, reasoning: { effort: 'high' }, stream: true })])?.prefixBytes, fields)
  t.equal(tapped([body({ instructions: 'an earlier one', input: [] }).subarray(0, -1), Buffer.from(',"instructions":"Be terse."}')])?.prefixBytes, JSON.stringify('Be terse.').length, 'of a repeated field the last counts')
})

/** A JSON array of `n` items of about 40 bytes each. */
const itemsText = (n: number, change?: number): string => `[${Array.from({ length: n }, (_, k) => JSON.stringify({ role: 'user', content: `turn ${k}${k === change ? ', edited' : ''}` })).join(',')}]`

t.test('an input goes on from the previous one when it begins with it; otherwise what both could share is bounded', async (t) => {
  const recorded = recordOf(historyOf(itemsText(3)))
  t.equal(recorded.inputBytes, itemsText(3).length - 1, 'all but the closing bracket covered')
  t.equal(recorded.inputCheckpoints?.length, 2, 'digests after 64 bytes, and of all 105')
  t.equal(sharedInputBytes(historyOf(itemsText(3)), recorded), undefined, 'the same input')
  t.equal(sharedInputBytes(historyOf(itemsText(5)), recorded), undefined, 'items appended')
  const fewer = itemsText(2)
  t.equal(sharedInputBytes(historyOf(fewer), recorded), fewer.length, 'fewer items: at most all of it')
  t.equal(sharedInputBytes(historyOf('["a summary"]'), recorded), 13, 'another first item, shorter than the first digest: at most all of it')
  t.equal(sharedInputBytes(historyOf(`[${JSON.stringify('a summary of it all '.repeat(5))}]`), recorded), 63, 'a longer one: under the first digest\'s 64 bytes')
  const edited = itemsText(3, 2)
  const bound = sharedInputBytes(historyOf(edited), recorded)!
  const parting = [...edited].findIndex((c, k) => c !== itemsText(3)[k])
  t.ok(bound >= parting && bound < 2 * parting, `the third item edited: ${bound} bytes at most, the ${parting} before it included`)
  t.equal(sharedInputBytes(historyOf('"a string"'), recordOf(historyOf('"a string"'))), undefined, 'a string as before')
  t.equal(sharedInputBytes(historyOf('"a string, longer"'), recordOf(historyOf('"a string"'))), undefined, 'a string that grew')
  t.equal(sharedInputBytes(historyOf('"another"'), recordOf(historyOf('"a string"'))), 8, 'another string: under its 9 bytes covered')
  t.equal(sharedInputBytes(undefined, recorded), undefined, 'no input read for this call')
  t.equal(sharedInputBytes(historyOf('[]'), {}), undefined, 'none recorded for the previous call')
  t.equal(sharedInputBytes(historyOf('[]'), recordOf(historyOf('[]'))), undefined, 'from an empty input')
})

t.test('records read back that this code did not write are not judged', async (t) => {
  const input = historyOf(itemsText(3))
  t.equal(sharedInputBytes(input, { inputBytes: 100, inputCheckpoints: [1, 2, 3, 4] }), undefined, 'more digests than lengths')
  t.equal(sharedInputBytes(input, { inputBytes: 100, inputCheckpoints: [] }), undefined, 'none')
  t.equal(sharedInputBytes(input, { inputBytes: 1.5, inputCheckpoints: [1] }), undefined, 'a length that is none')
  t.equal(sharedInputBytes(input, { inputBytes: 100, inputCheckpoints: 'x' as unknown as number[] }), undefined, 'no array')
})

t.test('a long input: found to within a power of two, never under what is shared', async (t) => {
  const text = itemsText(100)
  const recorded = recordOf(historyOf(text))
  t.equal(recorded.inputBytes, INPUT_HEAD_BYTES, 'covered as far as the tap keeps')
  for (const change of [0, 1, 5, 20, 40, 60]) {
    const edited = itemsText(100, change)
    const parting = [...edited].findIndex((c, k) => c !== text[k])
    const bound = sharedInputBytes(historyOf(edited), recorded)
    if (parting >= INPUT_HEAD_BYTES) {
      t.equal(bound, undefined, `item ${change} edited past what the record covers: not judged`)
      continue
    }
    t.ok(bound! >= parting && bound! < Math.max(2 * parting, 64), `item ${change} edited at byte ${parting}: ${bound} at most`)
  }
})

t.test('a record stops where the fields and input reach the limit: sharing that much, a call is not judged', async (t) => {
  const text = itemsText(100)
  const recorded = recordOf(historyOf(text, 1000), 2000)
  t.equal(recorded.inputBytes, 1000, 'the limit less the fields')
  t.equal(sharedInputBytes(historyOf(itemsText(100, 40), 1000), recorded), undefined, 'parting past it: not judged')
  t.ok(sharedInputBytes(historyOf(itemsText(100, 5), 1000), recorded)! < 1000, 'parting before it: bounded')
  t.same(recordOf(historyOf(text, 2500), 2000), {}, 'fields over the limit: nothing is kept')
  t.same(recordOf(historyOf(text, 2000), 2000), {}, 'fields exactly at the limit: nothing is kept')
})
