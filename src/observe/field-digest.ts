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
  #size = 0

  update (part: Buffer): void {
    this.#size += part.length
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

  /** How many bytes the value has, short or long. */
  get size (): number {
    return this.#size
  }

  /** The value's bytes when it is short (SMALL_BYTES at most); undefined for a long one. */
  shortValue (): Buffer | undefined {
    if (this.#sha !== undefined) return undefined
    return this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts, this.#bytes)
  }

  /** `j` and 16 hex digits for a short value, `s` and SHA-256's 64 for a long one. Once: a SHA-256 ends here. */
  digest (): string {
    if (this.#sha !== undefined) return `s${this.#sha.digest('hex')}`
    return `j${lanesHex(this.#lanes)}`
  }

  /** Feeds `digest()`'s text to `text`; a short value's without making the string. */
  digestInto (text: TextDigest): TextDigest {
    if (this.#sha !== undefined) return text.add(this.digest())
    return text.add('j').addHex(this.#lanes.one).addHex(this.#lanes.two)
  }
}

/**
 * The digest of a short ASCII text fed in pieces (`model:…;instructions:…;tools:…;`, the
 * fingerprint the record keeps), as 16 hex digits. The text is never made as one string (nor
 * copied into a buffer to be hashed); the lanes see each character's low byte, as they saw the
 * text's latin1 bytes when it was, so fingerprints stored then still match.
 */
export class TextDigest {
  readonly #lanes = newLanes()

  add (text: string): this {
    const lanes = this.#lanes
    let { one, two } = lanes
    for (let i = 0; i < text.length; i++) {
      const byte = text.charCodeAt(i) & 0xff
      one = Math.imul(one ^ byte, PRIME_ONE)
      two = Math.imul(two ^ byte, PRIME_TWO)
    }
    lanes.one = one
    lanes.two = two
    return this
  }

  /** The 8 hex digits of a lane's value, as `lanesHex` writes them. */
  addHex (value: number): this {
    const lanes = this.#lanes
    let { one, two } = lanes
    for (let shift = 28; shift >= 0; shift -= 4) {
      const byte = HEX_CODES[(value >>> shift) & 0xf]!
      one = Math.imul(one ^ byte, PRIME_ONE)
      two = Math.imul(two ^ byte, PRIME_TWO)
    }
    lanes.one = one
    lanes.two = two
    return this
  }

  hex (): string {
    return lanesHex(this.#lanes)
  }
}

/** Two 32-bit FNV-1a hashes of the same bytes with different seeds and primes: 64 bits between them. */
export interface Lanes { one: number, two: number }

export function newLanes (): Lanes {
  return { one: 0x811c9dc5, two: 0x050c5d1f }
}

// Each loop keeps the lanes in locals: through the object's fields, the tap alone cost ~25 % more.
const PRIME_ONE = 0x01000193
const PRIME_TWO = 0x01000197

export function feedLanes (lanes: Lanes, bytes: Uint8Array): void {
  let { one, two } = lanes
  for (let i = 0; i < bytes.length; i++) {
    one = Math.imul(one ^ bytes[i]!, PRIME_ONE)
    two = Math.imul(two ^ bytes[i]!, PRIME_TWO)
  }
  lanes.one = one
  lanes.two = two
}

/** The second lane's low 21 bits beside the first's 32: 53 bits, exact in a double (and in JSON). */
const TWO_POW_21 = 0x20_0000

/** Both lanes as one number. */
export function lanesNumber ({ one, two }: Lanes): number {
  return (one >>> 0) * TWO_POW_21 + ((two >>> 0) % TWO_POW_21)
}

const HEX_CODES = Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0))

/**
 * Both lanes' 16 hex digits as one flat string (made at once, not joined from pieces: a
 * comparison or a store need not flatten it first).
 */
function lanesHex ({ one, two }: Lanes): string {
  return String.fromCharCode(
    HEX_CODES[(one >>> 28) & 0xf]!, HEX_CODES[(one >>> 24) & 0xf]!, HEX_CODES[(one >>> 20) & 0xf]!, HEX_CODES[(one >>> 16) & 0xf]!,
    HEX_CODES[(one >>> 12) & 0xf]!, HEX_CODES[(one >>> 8) & 0xf]!, HEX_CODES[(one >>> 4) & 0xf]!, HEX_CODES[one & 0xf]!,
    HEX_CODES[(two >>> 28) & 0xf]!, HEX_CODES[(two >>> 24) & 0xf]!, HEX_CODES[(two >>> 20) & 0xf]!, HEX_CODES[(two >>> 16) & 0xf]!,
    HEX_CODES[(two >>> 12) & 0xf]!, HEX_CODES[(two >>> 8) & 0xf]!, HEX_CODES[(two >>> 4) & 0xf]!, HEX_CODES[two & 0xf]!)
}
