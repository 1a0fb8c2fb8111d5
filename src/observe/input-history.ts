/**
 * Whether a call's `input` goes on from the previous call's, and if not, how much of it the two
 * calls could still share in a cache.
 *
 * A client that keeps the conversation itself (codex, `store: false`) sends the whole history
 * in `input` each turn: the previous call's input, its output, the new items. Its prompt then
 * begins with the previous prompt, which the provider may have cached. When the input was
 * rewritten instead (a window that drops the oldest turns, an edited item, or independent calls
 * that share only their instructions), the cache can serve only what the two prompts still
 * share: the fingerprinted fields (`tools`, `instructions`, …) and the bytes the two inputs
 * begin with. When that is under the shortest prefix the provider caches, the changed input
 * explains the miss (cache-outcome.ts, `input_changed`).
 *
 * Only the first bytes matter: a judgement needs to know whether the two calls share less than
 * a few kilobytes (judgedInputBytes), so the tap keeps the first INPUT_HEAD_BYTES of `input` as
 * written (one copy, of that much at most), and a record keeps digests of its first 64,
 * 128, 256, … bytes. The next call finds where its input parts from the previous one to within
 * a power of two, and takes everything before that point as shared: a bound that is never
 * under what the two share byte for byte.
 */
import { feedLanes, lanesNumber, newLanes } from './field-digest.js'

/** The most of an `input` a tap keeps: what a judgement uses with the default CACHE_MIN_TOKENS. */
export const INPUT_HEAD_BYTES = 3072
/** The first length a record keeps a digest at; then twice that, and so on. */
const FIRST_CHECKPOINT = 64

/** A request's `input` as the judgement and the record need it. */
export interface InputHistory {
  /** Its first bytes as written, INPUT_HEAD_BYTES at most. */
  head: Buffer
  /** How many bytes it has as written, all of them. */
  bytes: number
  /** The bytes of the request's fingerprinted fields, which the prompt holds before its input. */
  prefixBytes: number
}

/**
 * What a call record keeps of its input: how many of its first bytes the digests cover, and
 * the digests of its first 64, 128, 256, … bytes under that and of those bytes (checkpointsOf).
 * Absent when no input was read, or when the fields alone are as much as a judgement can use.
 */
export interface RecordedHistory {
  inputBytes?: number | undefined
  inputCheckpoints?: readonly number[] | undefined
}

/**
 * The first bytes of a top-level `input` value, as a tap crosses it: a JSON array or string.
 * They are copied as they pass (a body's chunks are not kept), into a buffer that grows to
 * INPUT_HEAD_BYTES at most, and let go when the fields read by the value's end reach that,
 * since then nothing could be judged by them (the tap makes none when the fields before the
 * value already do: codex writes its long instructions first).
 */
export class InputHead implements InputHistory {
  #buffer: Buffer | undefined
  #kept = 0
  #letGo = false
  head: Buffer = EMPTY
  bytes = 0
  prefixBytes = 0

  update (part: Buffer): void {
    this.bytes += part.length
    const take = Math.min(part.length, INPUT_HEAD_BYTES - this.#kept)
    if (take === 0) return
    const needed = this.#kept + take
    if (this.#buffer === undefined || this.#buffer.length < needed) {
      // Doubling: a value arriving a byte a read costs no more than one arriving whole.
      const grown = Buffer.allocUnsafe(Math.min(INPUT_HEAD_BYTES, Math.max(needed, 2 * (this.#buffer?.length ?? 0))))
      this.#buffer?.copy(grown, 0, 0, this.#kept)
      this.#buffer = grown
    }
    part.copy(this.#buffer, this.#kept, 0, take)
    this.#kept = needed
  }

  /** The value ended, after fields of `fieldBytes` so far. */
  end (fieldBytes: number): void {
    this.#letGo = fieldBytes >= INPUT_HEAD_BYTES
    if (!this.#letGo && this.#buffer !== undefined) this.head = this.#buffer.subarray(0, this.#kept)
    this.#buffer = undefined
  }

  /** Itself, once the value ended (end); undefined when its head was let go. */
  history (prefixBytes: number): InputHistory | undefined {
    if (this.#letGo) return undefined
    this.prefixBytes = prefixBytes
    return this
  }
}

const EMPTY = Buffer.alloc(0)

/** The lengths a record keeps digests at, for `covered` bytes: 64, 128, … under it, then `covered` itself. */
function firstLength (covered: number): number {
  return covered > FIRST_CHECKPOINT ? FIRST_CHECKPOINT : covered
}

function nextLength (length: number, covered: number): number {
  return 2 * length < covered ? 2 * length : covered
}

/** Digests of `head`'s first bytes at each length, fed in one pass. */
class HeadDigest {
  readonly #head: Buffer
  readonly #lanes = newLanes()
  #fed = 0

  constructor (head: Buffer) {
    this.#head = head
  }

  /** The digest of the first `length` bytes (no fewer than were fed before). */
  upTo (length: number): number {
    feedLanes(this.#lanes, this.#head.subarray(this.#fed, length))
    this.#fed = length
    return lanesNumber(this.#lanes)
  }
}

/**
 * What the record keeps of `history`: digests of its input's bytes but the last (a closing
 * bracket or quote, which the next call's longer input has elsewhere) up to `limitBytes` with
 * the fields; nothing when the fields alone reach it, since no next call sharing them can be
 * judged to share too little.
 */
export function checkpointsOf ({ head, bytes, prefixBytes }: InputHistory, limitBytes: number): RecordedHistory | undefined {
  const covered = Math.min(bytes - 1, limitBytes - prefixBytes, head.length)
  // Nothing to cover (the fields alone reach the limit): a digest of no bytes would tell nothing.
  if (!(covered > 0)) return undefined
  const digest = new HeadDigest(head)
  // Made at its size: an array grown by push keeps room for more (the store counts its bytes).
  const checkpoints = new Array<number>(checkpointCount(covered))
  for (let length = firstLength(covered), c = 0; c < checkpoints.length; length = nextLength(length, covered), c++) checkpoints[c] = digest.upTo(length)
  return { inputBytes: covered, inputCheckpoints: checkpoints }
}

/**
 * How many bytes of `history`'s input the previous call's could share at most, when `history`
 * does not begin with it; undefined when it does (as far as the record covers), or when either
 * call's input was not read. The bound: the bytes before the first digest that differs, or all
 * of `history`'s input when it is shorter than a digest that does not.
 */
export function sharedInputBytes (history: InputHistory | undefined, previous: RecordedHistory): number | undefined {
  const { inputBytes: covered, inputCheckpoints: checkpoints } = previous
  // Read back from Redis's JSON: anything else is no record this code wrote.
  if (history === undefined || typeof covered !== 'number' || !Number.isSafeInteger(covered) || covered < 0 || !Array.isArray(checkpoints)) return undefined
  if (checkpoints.length !== checkpointCount(covered) || !checkpoints.every(Number.isSafeInteger)) return undefined
  const digest = new HeadDigest(history.head)
  for (let length = firstLength(covered), c = 0; ; length = nextLength(length, covered), c++) {
    if (length > history.head.length) return history.bytes
    if (digest.upTo(length) !== checkpoints[c]) return length - 1
    if (length === covered) return undefined
  }
}

function checkpointCount (covered: number): number {
  let count = 1
  for (let length = firstLength(covered); length !== covered; length = nextLength(length, covered)) count++
  return count
}
