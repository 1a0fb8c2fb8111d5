import { createHash, type Hash } from 'node:crypto'

/**
 * A request's prompt-cache prefix, as far as the gateway can see it: a fingerprint of its
 * top-level `model`, `instructions` and `tools`, and the model's name.
 */
export interface RequestPrefix {
  /** 16 hex digits; equal for equal values of the three fields, whatever their order. */
  fingerprint: string
  /** The top-level `model` string; undefined when absent or not a string. */
  model: string | undefined
}

const FIELDS = ['model', 'instructions', 'tools'] as const
type Field = typeof FIELDS[number]
const WANTED = new Set<string>(FIELDS)
/** Longer keys are none of the three (even written with escapes). */
const MAX_KEY_BYTES = 64
/** Longest model name kept for the record. */
const MAX_MODEL_BYTES = 256

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * A tap on a JSON request body as its chunks pass upstream: a small tokenizer that tracks
 * depth and strings, and feeds the bytes of the three wanted top-level values into a hash
 * each. It never copies, delays or parses the body; inside strings it jumps from quote to
 * quote with `indexOf`, so most bytes are skipped natively.
 *
 * Values are hashed as written (whitespace inside them counts); of duplicate keys the last
 * counts, as with `JSON.parse`; escaped keys (`"tool\u0073"`) are read as the key they spell.
 * A body that is not one JSON object, or that ends early, has no prefix.
 */
export class PrefixFingerprint {
  #depth = 0
  #started = false
  #failed = false
  #inString = false
  #escaped = false
  #expectKey = false
  /** Reading a top-level key: its bytes so far (small, copied: keys are short). */
  #key: Buffer[] | undefined
  #keyBytes = 0
  /** The key just read is wanted: its value, when it starts, is hashed. */
  #pending: Field | undefined
  /** The value being hashed, and whether it is a string, a container or a bare scalar. */
  #field: Field | undefined
  #kind: 'string' | 'container' | 'scalar' = 'scalar'
  /** Where the part of the current chunk still to be hashed (or kept, for a key) starts. */
  #from = 0
  readonly #hashes = new Map<Field, Hash>()
  #model: Buffer[] = []
  #modelBytes = 0

  /** Feeds one chunk as it passes; never throws. */
  push (chunk: Buffer): void {
    if (this.#failed || (this.#started && this.#depth === 0)) return
    this.#from = 0
    let i = 0
    if (this.#inString && this.#escaped) {
      this.#escaped = false
      i = 1 // the byte a backslash at the end of the last chunk escaped
    }
    const n = chunk.length
    while (i < n && !this.#failed) {
      i = this.#inString ? this.#stringStep(chunk, i) : this.#structureStep(chunk, i)
    }
    if (this.#field !== undefined) this.#hashPart(chunk, this.#from, n)
    if (this.#key !== undefined) this.#keepKeyPart(chunk, this.#from, n)
  }

  /** The prefix once the whole body has passed; undefined when it was not one JSON object. */
  result (): RequestPrefix | undefined {
    if (this.#failed || !this.#started || this.#depth !== 0) return undefined
    const digest = createHash('sha256')
    for (const field of FIELDS) digest.update(`${field}:${this.#hashes.get(field)?.digest('hex') ?? '-'};`)
    return { fingerprint: digest.digest('hex').slice(0, 16), model: this.#modelName() }
  }

  /**
   * Inside a string, at an unescaped byte: jumps from quote to quote with `indexOf`; a quote
   * after an odd run of backslashes is escaped. Backslashes elsewhere are never looked at.
   * Returns the next index.
   */
  #stringStep (chunk: Buffer, i: number): number {
    for (let from = i; ;) {
      const q = chunk.indexOf(QUOTE, from)
      if (q === -1) {
        // The string goes on in the next chunk; an odd run of backslashes here escapes its first byte.
        this.#escaped = oddBackslashesBefore(chunk, chunk.length, i)
        return chunk.length
      }
      if (!oddBackslashesBefore(chunk, q, i)) return this.#endString(chunk, q)
      from = q + 1
    }
  }

  #endString (chunk: Buffer, q: number): number {
    this.#inString = false
    if (this.#key !== undefined) this.#endKey(chunk, q)
    else if (this.#field !== undefined && this.#kind === 'string' && this.#depth === 1) this.#endValue(chunk, q + 1)
    return q + 1
  }

  /** Outside strings: one byte of structure. Returns the next index. */
  #structureStep (chunk: Buffer, i: number): number {
    const c = chunk[i]!
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      if (this.#field !== undefined && this.#kind === 'scalar' && this.#depth === 1) this.#endValue(chunk, i)
    } else if (!this.#started) {
      if (c === 0x7b) {
        this.#started = true
        this.#depth = 1
        this.#expectKey = true
      } else {
        this.#failed = true // not a JSON object
      }
    } else if (c === QUOTE) {
      this.#inString = true
      if (this.#depth === 1 && this.#expectKey) this.#startKey(i + 1)
      else this.#startValue(i, 'string')
    } else if (c === 0x7b || c === 0x5b) {
      this.#startValue(i, 'container')
      this.#depth++
    } else if (c === 0x7d || c === 0x5d) {
      this.#closeContainer(chunk, i)
    } else if (c === 0x2c) {
      if (this.#depth === 1) {
        if (this.#field !== undefined && this.#kind === 'scalar') this.#endValue(chunk, i)
        this.#expectKey = true
      }
    } else if (c !== 0x3a) {
      this.#startValue(i, 'scalar')
    }
    return i + 1
  }

  #closeContainer (chunk: Buffer, i: number): void {
    if (this.#depth === 1 && this.#field !== undefined && this.#kind === 'scalar') this.#endValue(chunk, i)
    this.#depth--
    if (this.#depth === 1 && this.#field !== undefined && this.#kind === 'container') this.#endValue(chunk, i + 1)
    if (this.#depth < 0) this.#failed = true
  }

  #startKey (from: number): void {
    this.#expectKey = false
    this.#key = []
    this.#keyBytes = 0
    this.#from = from
  }

  #endKey (chunk: Buffer, end: number): void {
    this.#keepKeyPart(chunk, this.#from, end)
    const raw = this.#keyBytes > MAX_KEY_BYTES ? '' : Buffer.concat(this.#key!).toString('latin1')
    this.#key = undefined
    const key = raw.includes('\\') ? unescapeKey(raw) : raw
    this.#pending = WANTED.has(key) ? key as Field : undefined
  }

  #keepKeyPart (chunk: Buffer, from: number, end: number): void {
    this.#keyBytes += end - from
    if (this.#keyBytes <= MAX_KEY_BYTES) this.#key!.push(Buffer.from(chunk.subarray(from, end)))
  }

  /** A value begins at `i`: hashed from here when its key is wanted (a repeated key starts over). */
  #startValue (i: number, kind: 'string' | 'container' | 'scalar'): void {
    if (this.#depth !== 1 || this.#pending === undefined || this.#field !== undefined) return
    this.#field = this.#pending
    this.#pending = undefined
    this.#kind = kind
    this.#from = i
    this.#hashes.set(this.#field, createHash('sha256'))
    if (this.#field === 'model') {
      this.#model = []
      this.#modelBytes = 0
    }
  }

  #endValue (chunk: Buffer, end: number): void {
    this.#hashPart(chunk, this.#from, end)
    this.#field = undefined
  }

  #hashPart (chunk: Buffer, from: number, end: number): void {
    if (end <= from) return
    const part = chunk.subarray(from, end)
    this.#hashes.get(this.#field!)!.update(part)
    if (this.#field !== 'model') return
    this.#modelBytes += part.length
    // Past the limit the name is dropped whole, never kept in pieces.
    if (this.#modelBytes <= MAX_MODEL_BYTES) this.#model.push(Buffer.from(part))
    else this.#model = []
  }

  #modelName (): string | undefined {
    if (this.#model.length === 0) return undefined
    try {
      const value: unknown = JSON.parse(Buffer.concat(this.#model).toString('utf8'))
      return typeof value === 'string' ? value : undefined
    } catch {
      return undefined // longer than kept, or not a string
    }
  }
}

/** Whether the backslashes right before `end` (not before `floor`) are an odd run. */
function oddBackslashesBefore (chunk: Buffer, end: number, floor: number): boolean {
  let at = end - 1
  while (at >= floor && chunk[at] === BACKSLASH) at--
  return (end - 1 - at) % 2 === 1
}

function unescapeKey (raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string
  } catch {
    return raw
  }
}
