import t from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { PrefixFingerprint } from '../../../src/observe/prefix-fingerprint.js'
import { afterWrite } from '../../../src/observe/idle-reading.js'
import { tapReadBody } from '../../../src/proxy/body-tap.js'

const BODY = Buffer.from(JSON.stringify({ model: 'gpt-5', instructions: 'Be "brief".', input: [{ role: 'user', content: 'x'.repeat(300_000) }], tools: [{ type: 'function', name: 'shell' }] }))
const whole = (): string => {
  const tap = new PrefixFingerprint()
  tap.push(BODY)
  return tap.result()!.fingerprint
}

t.test('a call that ends before the tap had a turn still has its prefix (lost fingerprints on fast small calls)', async (t) => {
  // The record is written when the call ends, which can come before the tap's next turn.
  const tap = new PrefixFingerprint()
  const feed = afterWrite(tap)
  for (let at = 0; at < BODY.length; at += 1000) feed(BODY.subarray(at, at + 1000))
  t.equal(tap.result()?.fingerprint, whole())
})

t.test('a large buffer is read a slice per turn, in order with the chunks after it', async (t) => {
  const tap = new PrefixFingerprint()
  const read: number[] = []
  const push = tap.push.bind(tap)
  tap.push = (chunk: Buffer): void => { read.push(chunk.length); push(chunk) }
  const feed = afterWrite(tap)
  feed(BODY.subarray(0, 200_000))
  feed(BODY.subarray(200_000))
  t.same(read, [], 'nothing is read on the turn the bytes pass')
  for (let turn = 0; turn < 20; turn++) await nextTurn()
  t.ok(read.length >= 5 && read.every((n) => n <= 64 * 1024), `read in ${read.length} slices of at most 64 KiB`)
  t.equal(read.reduce((a, b) => a + b, 0), BODY.length, 'every byte, once')
  t.equal(tap.result()?.fingerprint, whole(), 'in order')
})

t.test('reading waits while chunks keep arriving, then catches up', async (t) => {
  const tap = new PrefixFingerprint()
  let reads = 0
  const push = tap.push.bind(tap)
  tap.push = (chunk: Buffer): void => { reads++; push(chunk) }
  const feed = afterWrite(tap)
  for (let at = 0; at < BODY.length; at += 16 * 1024) {
    feed(BODY.subarray(at, at + 16 * 1024))
    await nextTurn()
  }
  t.equal(reads, 0, 'no reading while the body streams in every turn')
  for (let turn = 0; turn < 20; turn++) await nextTurn()
  t.ok(reads > 0)
  t.equal(tap.result()?.fingerprint, whole())
})

t.test('a body read whole: a small one is read only when the result is asked for, a large one on idle turns', async (t) => {
  const small = Buffer.from('{"model":"gpt-5","input":"hi"}')
  const counted = (): { tap: PrefixFingerprint, reads: () => number } => {
    const tap = new PrefixFingerprint()
    let reads = 0
    const push = tap.push.bind(tap)
    tap.push = (chunk: Buffer): void => { reads++; push(chunk) }
    return { tap, reads: () => reads }
  }
  const quick = counted()
  tapReadBody(quick.tap, small)
  for (let turn = 0; turn < 5; turn++) await nextTurn()
  t.equal(quick.reads(), 0, 'no turn of the event loop spent on a small body')
  t.equal(quick.tap.result()?.model, 'gpt-5', 'read at the end')
  const large = counted()
  tapReadBody(large.tap, BODY)
  for (let turn = 0; turn < 20; turn++) await nextTurn()
  t.ok(large.reads() >= 5, 'a large one read a slice per turn')
  t.equal(large.tap.result()?.fingerprint, whole())
})

const LONG = Buffer.from(JSON.stringify({ model: 'gpt-5', instructions: 'Be brief.', input: [{ role: 'user', content: 'x'.repeat(3_000_000) }] }))
const longPrint = (): string => {
  const tap = new PrefixFingerprint()
  tap.push(LONG)
  return tap.result()!.fingerprint
}

t.test('a long body streaming in with no idle turn: read once 1 MiB waits, after the bytes in hand went on, so what is held stays bounded', async (t) => {
  // Chunks held by reference would otherwise stay alive, all of them, until the body had passed.
  const tap = new PrefixFingerprint()
  const reads: number[] = []
  const push = tap.push.bind(tap)
  tap.push = (chunk: Buffer): void => { reads.push(fed); push(chunk) }
  const feed = afterWrite(tap)
  let fed = 0
  let readInTheSameCall = false
  for (let at = 0; at < LONG.length; at += 64 * 1024) {
    const before = reads.length
    feed(LONG.subarray(at, at + 64 * 1024))
    fed += Math.min(64 * 1024, LONG.length - at)
    readInTheSameCall ||= reads.length > before
    await Promise.resolve() // each socket read is a callback of its own: its microtasks, no turn
  }
  t.notOk(readInTheSameCall, 'never read in the call that hands a chunk over (an HTTP chunk goes upstream after it)')
  t.ok(reads.length > 0, 'read while the body still streams in')
  t.ok(reads[0]! > 1024 * 1024 && reads[0]! <= 1024 * 1024 + 64 * 1024, `first read once just over 1 MiB waited (${reads[0]} bytes in)`)
  t.equal(tap.result()?.fingerprint, longPrint(), 'the same prefix as read whole')
})

t.test('a long body read whole is still read a slice per turn: it is held anyway, so no bound applies', async (t) => {
  const tap = new PrefixFingerprint()
  const read: number[] = []
  const push = tap.push.bind(tap)
  tap.push = (chunk: Buffer): void => { read.push(chunk.length); push(chunk) }
  tapReadBody(tap, LONG)
  await Promise.resolve()
  t.same(read, [], 'nothing read before a turn')
  for (let turn = 0; turn < 5; turn++) await nextTurn()
  t.ok(read.length > 0 && read.every((n) => n <= 64 * 1024), 'slices of at most 64 KiB')
  t.equal(tap.result()?.fingerprint, longPrint())
})
