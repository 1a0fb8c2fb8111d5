import { createHash } from 'node:crypto'
import t from 'tap'
import { FieldDigest, TextDigest } from '../../../src/observe/field-digest.js'

/** The digest of a whole text, as the fingerprint's pieces joined. */
const shortDigest = (text: string): string => new TextDigest().add(text).hex()

const digestOf = (parts: Buffer[]): string => {
  const d = new FieldDigest()
  for (const part of parts) d.update(part)
  return d.digest()
}

t.test('a value digests the same however it is cut, on both sides of the 256-byte switch', async (t) => {
  for (const size of [0, 1, 200, 255, 256, 257, 300, 5000]) {
    const value = Buffer.from(Array.from({ length: size }, (_, i) => 32 + ((i * 7919) % 90)))
    const whole = digestOf([value])
    t.equal(digestOf([...value].map((byte) => Buffer.from([byte]))), whole, `${size} bytes, byte by byte`)
    for (const cut of [1, 100, 255, 256, 257]) {
      if (cut < size) t.equal(digestOf([value.subarray(0, cut), value.subarray(cut)]), whole, `${size} bytes cut at ${cut}`)
    }
    if (size <= 256) t.match(whole, /^j[0-9a-f]{16}$/, `${size} bytes: the JavaScript lanes`)
    else t.equal(whole, `s${createHash('sha256').update(value).digest('hex')}`, `${size} bytes: SHA-256 of every byte`)
  }
})

t.test('different short values differ', async (t) => {
  const seen = new Set(['"gpt-5"', '"gpt-5-mini"', '"gpt-4.1"', '"o3"', '"gpt-5 "'].map((v) => digestOf([Buffer.from(v)])))
  t.equal(seen.size, 5)
})

t.test('digests are pinned: fingerprints stored by earlier versions keep matching', async (t) => {
  t.equal(digestOf([Buffer.from('"gpt-5"')]), 'jdcf013ee104572d8')
  t.equal(shortDigest('model:j0;instructions:-;tools:-;'), '6eb6f00b68464c01')
})

t.test('a text digested in pieces, and field digests fed without their strings, give the digest of the whole text', async (t) => {
  const short = new FieldDigest()
  short.update(Buffer.from('"gpt-5"'))
  const long = new FieldDigest()
  long.update(Buffer.from(`"${'x'.repeat(400)}"`))
  const [shortText, longText] = [short.digest(), long.digest()]
  // digest() ends a SHA-256: fresh digests of the same values for digestInto.
  const again = (value: string): FieldDigest => { const d = new FieldDigest(); d.update(Buffer.from(value)); return d }
  const whole = `model:${shortText};instructions:-;tools:${longText};`
  const pieces = again('"gpt-5"').digestInto(new TextDigest().add('model:')).add(';instructions:').add('-').add(';tools:')
  again(`"${'x'.repeat(400)}"`).digestInto(pieces).add(';')
  t.equal(pieces.hex(), shortDigest(whole))
  t.equal(new TextDigest().add('model:j0;').add('instructions:-;tools:-;').hex(), '6eb6f00b68464c01', 'the pinned fingerprint, in two pieces')
  t.match(pieces.hex(), /^[0-9a-f]{16}$/)
})
