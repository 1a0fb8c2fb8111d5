import { createHash, type Hash } from 'node:crypto'

/** Values up to this many bytes are digested in JavaScript; longer ones by SHA-256. */
const SMALL_BYTES = 256

/**
 * The digest of one value's bytes, fed in parts. A short value (a model name, short
 * instructions) is digested by two 32-bit FNV-1a lanes in JavaScript: a native SHA-256 object
 * costs ~1 µs to make and finish, more than hashing a few dozen bytes. A longer one (tools,
 * long instructions) goes to SHA-256, fed from its first byte (a short value's parts are kept,
 * as views of the chunks, until it is known to be long). Which digest a value gets depends only on its bytes, so equal
 * values digest equally in every process.
 */
export class FieldDigest {
  readonly #lanes = newLanes()
  #bytes = 0
  /** A short value's parts (views of the chunks, not copies) until it proves long. */
  #parts: Buffer[] = []
  #sha: Hash | undefined

  update (part: Buffer): void {
    if (this.#sha !== undefined) {
      this.#sha.update(part)
      return
    }
    if (this.#bytes + part.length > SMALL_BYTES) {
      this.#sha = createHash('sha256')
      for (const earlier of this.#parts) this.#sha.update(earlier)
      this.#sha.update(part)
      this.#parts = []
      return
    }
    this.#parts.push(part)
    this.#bytes += part.length
    feedLanes(this.#lanes, part)
  }

  /** The value's bytes when it is short (SMALL_BYTES at most); undefined for a long one. */
  shortValue (): Buffer | undefined {
    if (this.#sha !== undefined) return undefined
    return this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts, this.#bytes)
  }

  /** `j` and 16 hex digits for a short value, `s` and SHA-256's 64 for a long one. */
  digest (): string {
    if (this.#sha !== undefined) return `s${this.#sha.digest('hex')}`
    return `j${lanesHex(this.#lanes)}`
  }
}

/** 16 hex digits of a short ASCII text (a few digests joined): the fingerprint the record keeps. */
export function shortDigest (text: string): string {
  const lanes = newLanes()
  feedLanes(lanes, Buffer.from(text, 'latin1'))
  return lanesHex(lanes)
}

/** Two 32-bit FNV-1a hashes of the same bytes with different seeds and primes: 64 bits between them. */
interface Lanes { one: number, two: number }

function newLanes (): Lanes {
  return { one: 0x811c9dc5, two: 0x050c5d1f }
}

function feedLanes (lanes: Lanes, bytes: Uint8Array): void {
  let one = lanes.one
  let two = lanes.two
  for (let i = 0; i < bytes.length; i++) {
    one = Math.imul(one ^ bytes[i]!, 0x01000193)
    two = Math.imul(two ^ bytes[i]!, 0x01000197)
  }
  lanes.one = one
  lanes.two = two
}

function lanesHex (lanes: Lanes): string {
  return `${hex32(lanes.one)}${hex32(lanes.two)}`
}

/** Two hex digits per byte value: Number#toString(16) cost ~0.2 µs a call. */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'))

function hex32 (value: number): string {
  return HEX[(value >>> 24) & 0xff]! + HEX[(value >>> 16) & 0xff]! + HEX[(value >>> 8) & 0xff]! + HEX[value & 0xff]!
}
