/**
 * Whether a call's `input` history goes on from the previous call's or was rewritten.
 *
 * A client that keeps the conversation itself (codex, `store: false`) sends the whole history
 * in `input` each turn: the previous call's input, its output, the new items. Its prompt then
 * begins with the previous prompt, which the provider may have cached. When the history was
 * rewritten instead (compacted into a summary, truncated, an item edited or dropped), the
 * previous prompt is no longer a prefix and the cache cannot serve it: the miss is explained
 * as `history_rewritten`.
 *
 * The history is known by its items' sizes, not their bytes: the tap already finds where each
 * top-level item of `input` begins and ends (prefix-fingerprint.ts), and hashing every byte
 * of a history of hundreds of kilobytes would cost far more than crossing it. A rewrite that
 * keeps every item's size is not seen (the miss stays `unexplained`); a different size is a
 * different item, so a history judged rewritten was. An item is measured from its opening
 * bracket to its closing one as written: a client that re-serialised its history with other
 * whitespace or escapes inside an item would read as rewritten (codex writes it the same way
 * each turn).
 */

/** The top-level items of a request's `input` array, as the record and the next call need them. */
export interface InputHistory {
  /** How many items. */
  items: number
  /**
   * `prefixes[k]` digests the sizes of the first k items (`prefixes[0]`, of none): the next
   * call's history goes on from this one when its `prefixes[items]` is this one's last.
   */
  prefixes: readonly number[]
}

/** What a call record keeps of its history: the item count and the digest of them all; absent when none was read. */
export interface RecordedHistory {
  inputItems?: number | undefined
  inputDigest?: number | undefined
}

/** FNV-1a (32-bit) over each size's two 16-bit halves, in two lanes with different seeds and primes. */
const SEED_ONE = 0x811c9dc5
const SEED_TWO = 0x050c5d1f
/** The second lane's low 21 bits beside the first's 32: 53 bits, exact in a double. */
const TWO_POW_21 = 0x20_0000

/** Items counted as a tap crosses `input`: `start` at an item's opening bracket, `end` after its closing one (body offsets). */
export class InputItems {
  readonly #prefixes: number[] = [combine(SEED_ONE, SEED_TWO)]
  #one = SEED_ONE
  #two = SEED_TWO
  #startedAt = 0
  /** False once an item was not an object or array (a string): the history is then not judged. */
  #countable = true

  start (offset: number): void {
    this.#startedAt = offset
  }

  end (offset: number): void {
    const size = offset - this.#startedAt
    let one = Math.imul(this.#one ^ (size & 0xffff), 0x01000193)
    one = Math.imul(one ^ (size >>> 16), 0x01000193)
    let two = Math.imul(this.#two ^ (size & 0xffff), 0x01000197)
    two = Math.imul(two ^ (size >>> 16), 0x01000197)
    this.#one = one
    this.#two = two
    this.#prefixes.push(combine(one, two))
  }

  /** An item that is no object or array. */
  uncountable (): void {
    this.#countable = false
  }

  history (): InputHistory | undefined {
    return this.#countable ? { items: this.#prefixes.length - 1, prefixes: this.#prefixes } : undefined
  }
}

function combine (one: number, two: number): number {
  return (one >>> 0) * TWO_POW_21 + ((two >>> 0) % TWO_POW_21)
}

/**
 * Whether `history` is not the previous call's with items appended: fewer items, or its first
 * ones differ. Judged only when both calls' histories were read.
 */
export function rewritesHistory (history: InputHistory | undefined, previous: RecordedHistory): boolean {
  const { inputItems, inputDigest } = previous
  if (history === undefined || typeof inputItems !== 'number' || typeof inputDigest !== 'number') return false
  return history.items < inputItems || history.prefixes[inputItems] !== inputDigest
}
