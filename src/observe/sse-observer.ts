/**
 * Watches a Server-Sent Events byte stream for a few event types without touching it.
 * Incremental and tolerant: events and lines split across chunks, CRLF or LF, huge events,
 * garbage. It copies only the lines of the events it was asked for, never more than
 * `maxEventBytes` of one (of a longer one, only the end, when `tailBytes` asks for it), and
 * never throws: a callback's failure ends the observation.
 */

import { ByteTail } from './byte-tail.js'

const LF = 0x0a
const CR = 0x0d
const EVENT_PREFIX = Buffer.from('event:')
const DATA_PREFIX = Buffer.from('data:')

export interface SseObserverOptions {
  /**
   * Event types whose data is wanted; events without an `event:` line are offered too.
   * Either a list (matched on the bytes, so other events' names are never decoded: the
   * cheap way, for the relay's hot path) or a predicate over the decoded name.
   */
  types?: readonly string[]
  wants?: (type: string) => boolean
  /**
   * Called with the event's type (undefined when it had no `event:` line) and its data; `cut`
   * when the data is only the end of an event too long to copy (see `tailBytes`).
   */
  onEvent: (type: string | undefined, data: string, cut?: boolean) => void
  maxEventBytes?: number
  /**
   * Of a wanted event whose data line passes `maxEventBytes`, the last this many bytes of that
   * line are offered (`cut`), for what sits at its end; at most `maxEventBytes`. 0 (the
   * default): such an event is skipped.
   */
  tailBytes?: number
}

export class SseObserver {
  readonly #wants: (type: string) => boolean
  readonly #onEvent: (type: string | undefined, data: string, cut?: boolean) => void
  readonly #maxEventBytes: number
  readonly #tailBytes: number
  /** Longest line kept: one that can still carry `maxEventBytes` of data ("data: " … "\r"). */
  readonly #maxLineBytes: number
  /** The start of a line that continues in the next chunk. */
  #partial: Buffer[] = []
  #partialBytes = 0
  /** The current line is data of an unwanted event (or too large): drop it without copying. */
  #skippingLine = false
  #type: string | undefined
  #data: string[] = []
  #dataBytes = 0
  #overflow = false
  /** The current event's over-long data line is passing, and `tailBytes` wants its end: kept here. */
  #tail: ByteTail | undefined
  /** That end, once the line has passed: offered (cut) when the event is dispatched. */
  #cut: Buffer | undefined
  #stopped = false

  /** `types` as bytes, when given. */
  readonly #typeBytes: Array<{ name: string, bytes: Buffer }> | undefined

  constructor ({ types, wants, onEvent, maxEventBytes = 1024 * 1024, tailBytes = 0 }: SseObserverOptions) {
    if (types !== undefined) {
      const compiled = compileTypes(types)
      this.#typeBytes = compiled.bytes
      this.#wants = compiled.wants
    } else if (wants !== undefined) {
      this.#wants = wants
    } else {
      throw new TypeError('SseObserver needs `types` or `wants`')
    }
    this.#onEvent = onEvent
    this.#maxEventBytes = maxEventBytes
    this.#maxLineBytes = maxEventBytes + DATA_PREFIX.length + 2
    this.#tailBytes = Math.min(tailBytes, maxEventBytes)
  }

  /** Stops watching: later chunks are ignored at no cost. */
  stop (): void {
    this.#stopped = true
    this.#partial = []
    this.#data = []
    this.#tail = undefined
    this.#cut = undefined
  }

  push (chunk: Buffer): void {
    if (this.#stopped) return
    try {
      this.#push(chunk)
    } catch {
      this.stop()
    }
  }

  #push (chunk: Buffer): void {
    let start = 0
    for (;;) {
      const newline = chunk.indexOf(LF, start)
      if (newline === -1) {
        if (start < chunk.length) this.#keepPartial(chunk.subarray(start))
        return
      }
      if (this.#skippingLine) {
        this.#skippingLine = false
        if (this.#tail !== undefined) this.#endTail(chunk.subarray(start, newline))
      } else if (this.#partialBytes > 0) {
        this.#partial.push(chunk.subarray(start, newline))
        const line = Buffer.concat(this.#partial)
        this.#partial = []
        this.#partialBytes = 0
        this.#line(line, 0, line.length)
      } else {
        // Lines are read in place, by offsets: no Buffer object per line on the hot path.
        this.#line(chunk, start, newline)
      }
      if (this.#stopped) return
      start = newline + 1
    }
  }

  #keepPartial (piece: Buffer): void {
    if (this.#skippingLine) {
      this.#tail?.add(piece)
      return
    }
    if (this.#partialBytes === 0 && this.#isUnwantedData(piece)) {
      this.#skippingLine = true
      return
    }
    this.#partialBytes += piece.length
    if (this.#partialBytes > this.#maxLineBytes) {
      // Judged as #line judges a whole line, so where the chunks split never changes the outcome:
      // an unwanted event's data line is just dropped, any other too-long line spoils the event.
      this.#partial.push(piece)
      const head = Buffer.concat(this.#partial, DATA_PREFIX.length)
      const unwantedData = this.#isUnwantedData(head)
      // As #line: the first data line past the limit is the one whose end is kept.
      if (!unwantedData && !this.#overflow && this.#tailBytes > 0 && startsWithAt(head, 0, DATA_PREFIX)) {
        // One byte more than wanted, for a CR before the LF.
        this.#tail = new ByteTail(this.#tailBytes + 1)
        this.#tail.addLast(this.#partial)
      }
      this.#partial = []
      this.#partialBytes = 0
      this.#skippingLine = true
      if (!unwantedData) this.#overflow = true
      return
    }
    // Copy: the chunk's memory belongs to the relay and may be reused.
    this.#partial.push(Buffer.from(piece))
  }

  /** The over-long line ended with `last`: its end without the CR, `tailBytes` of it, as #line cuts it. */
  #endTail (last: Buffer): void {
    this.#tail!.add(last)
    let kept = this.#tail!.bytes()
    this.#tail = undefined
    if (kept[kept.length - 1] === CR) kept = kept.subarray(0, kept.length - 1)
    this.#cut = kept.subarray(Math.max(0, kept.length - this.#tailBytes))
  }

  #isUnwantedData (piece: Buffer): boolean {
    return this.#type !== undefined && !this.#wants(this.#type) && startsWithAt(piece, 0, DATA_PREFIX)
  }

  /** The line `buf[start, lineEnd)`, without its LF. */
  #line (buf: Buffer, start: number, lineEnd: number): void {
    let end = lineEnd
    if (end > start && buf[end - 1] === CR) end--
    if (end === start) {
      this.#dispatch()
      return
    }
    if (startsWithAt(buf, start, DATA_PREFIX)) {
      if (this.#overflow || (this.#type !== undefined && !this.#wants(this.#type))) return
      let from = start + DATA_PREFIX.length
      if (buf[from] === 0x20) from++
      this.#dataBytes += end - from
      if (this.#dataBytes > this.#maxEventBytes) {
        this.#overflow = true
        this.#data = []
        if (this.#tailBytes > 0) this.#cut = Buffer.from(buf.subarray(Math.max(from, end - this.#tailBytes), end))
        return
      }
      // A whole line, so no UTF-8 sequence is cut: decoded once, no copy of its bytes kept.
      this.#data.push(buf.toString('utf8', from, end))
    } else if (lineEnd - start > this.#maxLineBytes) {
      this.#overflow = true // as when the line arrives in pieces (#keepPartial)
    } else if (startsWithAt(buf, start, EVENT_PREFIX)) {
      this.#type = this.#typeBytes === undefined
        ? buf.toString('utf8', start + EVENT_PREFIX.length, end).trim()
        : matchType(buf, start + EVENT_PREFIX.length, end, this.#typeBytes)
    }
    // Comments (":"), id: and retry: lines carry nothing we watch for.
  }

  #dispatch (): void {
    const type = this.#type
    const data = this.#data
    // The type is checked again: data lines read before a late `event:` line were kept.
    const wanted = !this.#overflow && data.length > 0 && (type === undefined || this.#wants(type))
    const cut = this.#cut
    this.#type = undefined
    if (data.length > 0) this.#data = []
    this.#dataBytes = 0
    this.#overflow = false
    // Multiple data lines of one event are joined with "\n" (the SSE rule).
    if (wanted) this.#onEvent(type, data.length === 1 ? data[0]! : data.join('\n'))
    else if (cut !== undefined) this.#dispatchCut(type, cut)
  }

  /** An event too long to copy: the end of its over-long data line, when it is wanted. */
  #dispatchCut (type: string | undefined, cut: Buffer): void {
    this.#cut = undefined
    if (type === undefined || this.#wants(type)) this.#onEvent(type, cut.toString('utf8'), true)
  }
}

interface CompiledTypes {
  bytes: Array<{ name: string, bytes: Buffer }>
  wants: (type: string) => boolean
}

/** A `types` list as bytes and a lookup, made once per list: the relay makes an observer per response. */
const compiledTypes = new WeakMap<readonly string[], CompiledTypes>()

function compileTypes (types: readonly string[]): CompiledTypes {
  let compiled = compiledTypes.get(types)
  if (compiled === undefined) {
    const names = new Set(types)
    compiled = { bytes: types.map((name) => ({ name, bytes: Buffer.from(name) })), wants: (type) => names.has(type) }
    compiledTypes.set(types, compiled)
  }
  return compiled
}

/** Stands for every event type not asked for; no real type has a NUL in it. */
const OTHER_TYPE = '\u0000other'

/** The wanted type named by `line[from, end)` (spaces around it ignored), else OTHER_TYPE. */
function matchType (line: Buffer, from: number, end: number, types: Array<{ name: string, bytes: Buffer }>): string {
  while (from < end && (line[from] === 0x20 || line[from] === 0x09)) from++
  while (end > from && (line[end - 1] === 0x20 || line[end - 1] === 0x09)) end--
  for (const { name, bytes } of types) {
    if (bytes.length !== end - from) continue
    let same = true
    for (let i = 0; i < bytes.length && same; i++) same = line[from + i] === bytes[i]
    if (same) return name
  }
  return OTHER_TYPE
}

/** Byte by byte: for a 5- or 6-byte prefix this beats the native compare call's overhead. */
function startsWithAt (buffer: Buffer, at: number, prefix: Buffer): boolean {
  if (buffer.length - at < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (buffer[at + i] !== prefix[i]) return false
  return true
}
