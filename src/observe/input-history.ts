/**
 * Whether a call's `input` goes on from the previous call's, and if not, how much of it the two
 * calls could still share in a cache.
 *
 * A client that keeps the conversation itself (codex, `store: false`) sends the whole history
 * in `input` each turn: the previous call's input, its output, the new items. Its prompt then
 * begins with the previous prompt, which the provider may have cached. When the input was
 * rewritten instead (a window that drops the oldest turns, a compaction into a summary, an
 * edited item, or independent calls that share only their instructions), the cache can serve
 * only what the two prompts still share: the fingerprinted fields (`tools`, `instructions`, …)
 * and the leading items that are the same. When that is under the shortest prefix the provider
 * caches, the changed input explains the miss (cache-outcome.ts, `input_changed`).
 *
 * The history is known by its items' sizes, not their bytes: the tap already finds where each
 * top-level item of `input` begins and ends (prefix-fingerprint.ts), and hashing every byte of a
 * history of hundreds of kilobytes would cost far more than crossing it. An item of another size
 * is another item; items of the same size are taken to be the same, so the part two calls share
 * is never under-counted, and a miss is never put on a change the sizes cannot show. An item is
 * measured from its opening bracket to its closing one, as written.
 */

/** The top-level items of a request's `input` array, as the judgement and the record need them. */
export interface InputHistory {
  /** How many items. */
  items: number
  /** `ends[k]`: the bytes of the first k items (`ends[0]` is 0). */
  ends: readonly number[]
  /** The bytes of the request's fingerprinted fields, which the prompt holds before its input. */
  prefixBytes: number
}

/**
 * What a call record keeps of its history: the item count, and digests of the sizes of its
 * first 1, 2, 4, … items (each power of two under the count) and of them all (checkpointsOf),
 * up to the first that covers `limitBytes` with the fields before them. Absent when none was
 * read, or when the fields alone cover it. Enough for the next call to find where its input
 * stopped following this one to within a power of two, in a few numbers.
 */
export interface RecordedHistory {
  inputItems?: number | undefined
  inputCheckpoints?: readonly number[] | undefined
}

/**
 * Items counted as a tap crosses `input`: `start` at an item's opening bracket, `end` after its
 * closing one (body offsets). Once the body has passed, it is the history (one object less a
 * call); the tap only notes where items end, and the digests are folded when they are asked for.
 */
export class InputItems implements InputHistory {
  readonly ends: number[] = [0]
  prefixBytes = 0
  #startedAt = 0
  /** False once an item was not an object or array (a string): the history is then not judged. */
  #countable = true

  get items (): number {
    return this.ends.length - 1
  }

  start (offset: number): void {
    this.#startedAt = offset
  }

  end (offset: number): void {
    this.ends.push(this.ends[this.ends.length - 1]! + offset - this.#startedAt)
  }

  /** An item that is no object or array. */
  uncountable (): void {
    this.#countable = false
  }

  /** The history, with `prefixBytes` of fingerprinted fields; undefined when an item was not countable. */
  history (prefixBytes: number): InputHistory | undefined {
    if (!this.#countable) return undefined
    this.prefixBytes = prefixBytes
    return this
  }
}

/** FNV-1a (32-bit) over each size's two 16-bit halves, in two lanes with different seeds and primes. */
const SEED_ONE = 0x811c9dc5
const SEED_TWO = 0x050c5d1f
/** The second lane's low 21 bits beside the first's 32: 53 bits, exact in a double. */
const TWO_POW_21 = 0x20_0000

/** The digest of the sizes of a history's first items, folded in one at a time. */
class SizesDigest {
  readonly #ends: readonly number[]
  #one = SEED_ONE
  #two = SEED_TWO
  /** How many items are in. */
  #count = 0

  constructor (ends: readonly number[]) {
    this.#ends = ends
  }

  /** The digest of the first `count` items (no fewer than are in). */
  upTo (count: number): number {
    const ends = this.#ends
    let one = this.#one
    let two = this.#two
    for (let k = this.#count; k < count; k++) {
      const size = ends[k + 1]! - ends[k]!
      one = Math.imul(Math.imul(one ^ (size & 0xffff), 0x01000193) ^ (size >>> 16), 0x01000193)
      two = Math.imul(Math.imul(two ^ (size & 0xffff), 0x01000197) ^ (size >>> 16), 0x01000197)
    }
    this.#one = one
    this.#two = two
    this.#count = Math.max(this.#count, count)
    return (one >>> 0) * TWO_POW_21 + ((two >>> 0) % TWO_POW_21)
  }
}

/** The item counts a record keeps digests after, for a history of `items`: 1, 2, 4, … under it, then `items` itself. */
function firstCount (items: number): number {
  return items > 1 ? 1 : items
}

function nextCount (k: number, items: number): number {
  return 2 * k < items ? 2 * k : items
}

/**
 * What the record keeps of `history` (RecordedHistory): the digests, until one covers
 * `limitBytes` with the fields; none at all when the fields alone do (no next call sharing
 * them could be judged to share too little).
 */
export function checkpointsOf (history: InputHistory, limitBytes: number): number[] | undefined {
  const { items, ends, prefixBytes } = history
  if (prefixBytes >= limitBytes) return undefined
  const digest = new SizesDigest(ends)
  const checkpoints: number[] = []
  for (let k = firstCount(items); ; k = nextCount(k, items)) {
    checkpoints.push(digest.upTo(k))
    if (k === items || prefixBytes + ends[k]! >= limitBytes) return checkpoints
  }
}

/**
 * How many bytes of `history`'s items the previous call's could share at most, when `history`
 * does not go on from it (fewer items, or its first ones differ); undefined when it does, when
 * the two share at least the limit the record was cut at, or when either call's history was not
 * read. The bound: the items before the first checkpoint that differs, or all of them when
 * every checkpoint within `history` agrees.
 */
export function sharedInputBytes (history: InputHistory | undefined, previous: RecordedHistory): number | undefined {
  const { inputItems: items, inputCheckpoints: checkpoints } = previous
  // Read back from Redis's JSON: a count that is not one is no record this code wrote.
  if (history === undefined || typeof items !== 'number' || !Number.isSafeInteger(items) || items < 0 || !Array.isArray(checkpoints)) return undefined
  if (checkpoints.length === 0 || checkpoints.length > checkpointCount(items)) return undefined
  const digest = new SizesDigest(history.ends)
  for (let k = firstCount(items), c = 0; c < checkpoints.length; k = nextCount(k, items), c++) {
    if (k > history.items) return history.ends[history.items]
    if (digest.upTo(k) !== checkpoints[c]) return history.ends[k - 1]
  }
  return undefined
}

function checkpointCount (items: number): number {
  let count = 1
  for (let k = firstCount(items); k !== items; k = nextCount(k, items)) count++
  return count
}
