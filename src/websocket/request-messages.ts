/**
 * Reads a WebSocket client's text messages (`response.create` and the like) through a
 * PrefixFingerprint each, for their type and prefix, without touching or holding back the relayed
 * bytes. Client frames are masked (RFC 6455 §5.3), so each payload slice is read from an
 * unmasked copy of bytes already written upstream; plain messages are read on idle turns of
 * the event loop, as HTTP bodies are, and compressed ones (permessage-deflate, as codex sends
 * them whenever the upstream agrees) are inflated on the side, in order, with the client's own
 * compression window, and read as their output comes.
 */
import { afterWrite } from '../observe/idle-reading.js'
import { PrefixFingerprint } from '../observe/prefix-fingerprint.js'
import { Opcode, unmask, type FrameHeader, type FrameListener } from './frame-parser.js'
import { InflateQueue, type InflateJob } from './inflate-queue.js'
import { joinsWindow, type DeflateParams } from './message-inflater.js'

/** One client text message. */
export interface RequestMessage {
  readonly tap: PrefixFingerprint
  /** `performance.now()` when its first frame began. */
  readonly startedAt: number
  /** Every byte of it is in the tap (a compressed one: once inflated), so its result can be read. */
  whole: boolean
}

export interface RequestMessagesOptions {
  /** The compression the client's messages use; undefined: none agreed. */
  deflate: DeflateParams | undefined
  /** Only each message's `type` is wanted (cache analysis off): its reading stops there. */
  typesOnly?: boolean
  /** A message's first frame has begun; in order. */
  onStart: (message: RequestMessage) => void
  /** A message's last frame has passed (a compressed one may still be inflating); in order. */
  onEnd: (message: RequestMessage) => void
  /** A compressed message has been inflated whole. */
  onWhole: () => void
  /** The messages cannot be followed any more (corrupt or unagreed compression, too much waiting); called once. */
  onLost: () => void
  /** Compressed bytes allowed to wait for the inflater before reading gives up. */
  maxQueuedBytes?: number
}

/** A text message on its way in; its `parts` hold a compressed one's unmasked payload until the inflater takes it. */
interface ArrivingText extends RequestMessage, InflateJob {
  readonly windowOnly: false
  /** Plain messages: hands each unmasked slice to the tap, read on idle turns. */
  readonly feed: ((bytes: Buffer) => void) | undefined
}

/** A compressed binary message: inflated only to keep the window right; no tap, no request, never reported. */
interface WindowOnlyMessage extends InflateJob {
  readonly windowOnly: true
}

type ArrivingMessage = ArrivingText | WindowOnlyMessage

export class RequestMessages implements FrameListener {
  readonly #options: RequestMessagesOptions
  #current: ArrivingMessage | undefined
  /** Whole compressed messages, in order, waiting for the inflater to finish the one before. */
  readonly #queue: InflateQueue<ArrivingMessage>

  constructor (options: RequestMessagesOptions) {
    this.#options = options
    this.#queue = new InflateQueue<ArrivingMessage>({
      deflate: options.deflate,
      maxQueuedBytes: options.maxQueuedBytes ?? 8 * 1024 * 1024,
      onData: (message, chunk) => { if (!message.windowOnly) message.tap.push(chunk) },
      onDone: (message) => {
        if (message.windowOnly) return
        message.whole = true
        safely(this.#options.onWhole)
      },
      onError: () => this.#lose()
    })
  }

  onFrameStart (frame: FrameHeader): void {
    if (!this.#queue.open) return
    if (frame.opcode === Opcode.text) {
      if (frame.rsv1 && this.#options.deflate === undefined) return this.#lose()
      // A data frame inside an unfinished message breaks the protocol (the upstream will close):
      // that message would never end, so nothing after it could be paired.
      if (this.#current !== undefined) return this.#lose()
      const tap = new PrefixFingerprint({ typeOnly: this.#options.typesOnly === true })
      const message: ArrivingText = { tap, startedAt: performance.now(), whole: false, compressed: frame.rsv1, feed: frame.rsv1 ? undefined : afterWrite(tap), parts: [], bytes: 0, windowOnly: false }
      this.#current = message
      safely(this.#options.onStart, message)
    } else if (frame.opcode === Opcode.binary) {
      if (this.#current !== undefined) return this.#lose()
      if (joinsWindow(frame.rsv1, this.#options.deflate)) this.#current = { compressed: true, parts: [], bytes: 0, windowOnly: true }
    }
  }

  onFramePayload (frame: FrameHeader, slice: Buffer, offset: number): void {
    const message = this.#current
    if (message === undefined || frame.opcode >= Opcode.close || this.#queue.stopped) return
    if (!message.windowOnly && message.feed !== undefined) {
      // A plain message whose tap has all it wants (its type) needs no more copies.
      if (message.tap.settled) return
      // Held and read on idle turns, or at once past MAX_UNREAD_BYTES (afterWrite).
      message.feed(unmaskedCopy(slice, frame, offset))
      return
    }
    const bytes = unmaskedCopy(slice, frame, offset)
    message.bytes += bytes.length
    if (!this.#queue.fits(message.bytes)) return this.#lose()
    message.parts.push(bytes)
  }

  onFrameEnd (frame: FrameHeader): void {
    if (frame.opcode >= Opcode.close || !frame.fin) return
    const message = this.#current
    this.#current = undefined
    if (message === undefined || this.#queue.stopped) return
    if (!message.windowOnly) {
      message.whole = !message.compressed
      safely(this.#options.onEnd, message)
    }
    if (message.compressed) this.#queue.push(message)
  }

  /** Messages are still being read: not stopped (reading lost, or the connection closed and all read). */
  get reading (): boolean {
    return !this.#queue.stopped
  }

  /** Reading stops for good: nothing more is copied, queued or inflated (no `onLost`: the caller knows). */
  stop (): void {
    this.#current = undefined
    this.#queue.stop()
  }

  /** The connection has closed: messages already queued are still inflated, then the inflater is freed. */
  finish (): void {
    this.#current = undefined
    this.#queue.finish()
  }

  #lose (): void {
    if (this.#queue.stopped) return
    this.stop()
    safely(this.#options.onLost)
  }
}

/** A copy of a payload slice, unmasked. An unmasked client frame breaks the protocol (the upstream will close); copied all the same. */
function unmaskedCopy (slice: Buffer, frame: FrameHeader, offset: number): Buffer {
  return frame.maskKey === undefined ? Buffer.from(slice) : unmask(slice, frame.maskKey, offset)
}

/** Calls what the reader reports to: its failure must never break the relay it reads beside (as in TextMessages). */
function safely<T extends unknown[]> (report: (...args: T) => void, ...args: T): void {
  try {
    report(...args)
  } catch {
    // Reading is an observer's: a failure to report loses a fact, never a byte.
  }
}
