/**
 * Property tests: however a body is cut into chunks (inside escapes, inside keys, inside
 * \uXXXX, one byte at a time, held and read in slices), the tap gives the fingerprint a
 * reference computes from the body whole, checked against JSON.parse.
 */
import t from 'tap'
import { PrefixFingerprint, type RequestPrefix } from '../../../src/observe/prefix-fingerprint.js'
import { randomBody, randomFrom, referencePrefix, type Random } from '../../support/json-bodies.js'

const SEED = Number(process.env.PREFIX_SEED ?? 20261202)
const BODIES = 400

function pushed (chunks: Buffer[]): RequestPrefix | undefined {
  const tap = new PrefixFingerprint()
  for (const chunk of chunks) tap.push(chunk)
  return tap.result()
}

/** `body` cut at random offsets (empty chunks included). */
function randomCuts (random: Random, body: Buffer): Buffer[] {
  const cuts = Array.from({ length: Math.floor(random() * 12) }, () => Math.floor(random() * (body.length + 1))).sort((a, b) => a - b)
  return [0, ...cuts].map((from, i) => body.subarray(from, [...cuts, body.length][i]))
}

t.test('random bodies cut anywhere give the reference fingerprint', async (t) => {
  const random = randomFrom(SEED)
  for (let n = 0; n < BODIES; n++) {
    const body = randomBody(random)
    const expected = referencePrefix(body)
    const whole = pushed([body])
    if (whole?.fingerprint !== expected.fingerprint || whole.model !== expected.model) {
      t.fail(`seed ${SEED}, body ${n}: whole gives ${JSON.stringify(whole)}, expected ${JSON.stringify(expected)}: ${body.toString()}`)
      return
    }
    for (let cut = 0; cut <= body.length; cut++) {
      if (pushed([body.subarray(0, cut), body.subarray(cut)])?.fingerprint !== expected.fingerprint) {
        t.fail(`seed ${SEED}, body ${n}: cut at ${cut}: ${body.toString()}`)
        return
      }
    }
    const chunks = randomCuts(random, body)
    if (pushed(chunks)?.fingerprint !== expected.fingerprint) {
      t.fail(`seed ${SEED}, body ${n}: cut at ${chunks.map((c) => c.length).join('+')}: ${body.toString()}`)
      return
    }
  }
  t.pass(`${BODIES} bodies, every two-chunk cut and random cuts`)
})

t.test('one byte at a time, and held chunks read in random slices', async (t) => {
  const random = randomFrom(SEED + 1)
  for (let n = 0; n < 100; n++) {
    const body = randomBody(random)
    const expected = referencePrefix(body).fingerprint
    t.equal(pushed([...body].map((byte) => Buffer.of(byte)))?.fingerprint, expected, `byte by byte, body ${n}`)
    const tap = new PrefixFingerprint()
    for (const chunk of randomCuts(random, body)) {
      tap.hold(chunk)
      if (random() < 0.5) tap.readHeld(1 + Math.floor(random() * 40))
    }
    t.equal(tap.result()?.fingerprint, expected, `held and read in slices, body ${n}`)
  }
})

t.test('a body cut short, with bytes after it, or not an object has no prefix', async (t) => {
  const random = randomFrom(SEED + 2)
  for (let n = 0; n < 100; n++) {
    const body = randomBody(random)
    const end = body.lastIndexOf('}')
    const short = body.subarray(0, Math.floor(random() * end))
    t.equal(pushed(randomCuts(random, short)), undefined, `cut short at ${short.length} of ${body.length}`)
    t.equal(pushed(randomCuts(random, Buffer.concat([body, Buffer.from(pick(random))]))), undefined, 'bytes after the object')
  }
  for (const other of ['[]', '"model"', '5', 'null', '{"model":"m"]', '\u001f\u008b\b\u0000']) t.equal(pushed([Buffer.from(other, 'latin1')]), undefined, other)
})

function pick (random: Random): string {
  const tails = ['x', '{}', ',', ' 1', '}']
  return tails[Math.floor(random() * tails.length)]!
}
