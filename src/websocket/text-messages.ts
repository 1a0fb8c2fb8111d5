/**
 * Reassembles the text messages of one direction from its frames, for reading only: fragments
 * are joined, and permessage-deflate messages (RFC 7692) are inflated from a copy of their
 * payload (InflateQueue), so the relayed bytes are never touched or held back. Messages are
 * handed on in the order they were sent, whether they needed inflating or not.
 */
import { Opcode, unmask, type FrameHeader, type FrameListener } from './frame-parser.js'
import { InflateQueue } from './inflate-queue.js'
import { joinsWindow, type DeflateParams } from './message-inflater.js'

export interface TextMessagesOptions {
  /** undefined: no compression agreed; a compressed frame then means the messages cannot be read. */
  deflate: DeflateParams | undefined
  /**
   * A whole message, or its first `maxMessageBytes` when it was longer (`complete` false), then
   * with its last TAIL_BYTES as `tail`. A message is UTF-8 JSON here, so its start is enough to
   * tell its type; a long response.completed has its usage near the end.
   */
  onMessage: (text: Buffer, complete: boolean, tail?: Buffer) => void
  /** The messages cannot be followed any more (bad compressed data, too much waiting); called once. */
  onLost: () => void
  maxMessageBytes?: number
  /** Bytes allowed to wait for the inflater (compressed ones, and plain ones behind them) before reading gives up. */
  maxQueuedBytes?: number
}

interface Message {
  readonly compressed: boolean
  parts: Buffer[]
  bytes: number
  /** Kept only its first maxMessageBytes (uncompressed messages). */
  cut: boolean
  /** The bytes past maxMessageBytes, only the last TAIL_BYTES or so of them; made only for such a long message. */
  tail: Tail | undefined
  /** A compressed binary message: inflated only to keep the window right, handed on to nobody. */
  windowOnly: boolean
}

/** How much of a message's end is kept when it is longer than maxMessageBytes: room for its usage and what follows it. */
const TAIL_BYTES = 64 * 1024

/** The last TAIL_BYTES (or a little more) of what was pushed. */
class Tail {
  readonly #parts: Buffer[] = []
  #bytes = 0

  push (bytes: Buffer): void {
    this.#parts.push(bytes)
    this.#bytes += bytes.length
    while (this.#bytes - this.#parts[0]!.length >= TAIL_BYTES) this.#bytes -= this.#parts.shift()!.length
  }

  get bytes (): Buffer {
    return Buffer.concat(this.#parts)
  }
}

export class TextMessages implements FrameListener {
  readonly #deflate: DeflateParams | undefined
  readonly #onMessage: (text: Buffer, complete: boolean, tail?: Buffer) => void
  readonly #onLost: () => void
  readonly #maxMessageBytes: number
  /** The text message whose frames are arriving; undefined between messages and in binary ones. */
  #current: Message | undefined
  /** Whole messages in order, once compression was agreed: compressed ones wait there for the inflater, plain ones behind them for their turn. */
  readonly #queue: InflateQueue<Message>
  /** The output of the message being inflated (one at a time), up to maxMessageBytes. */
  #out: Buffer[] = []
  #outBytes = 0
  #outComplete = true

  constructor ({ deflate, onMessage, onLost, maxMessageBytes = 1024 * 1024, maxQueuedBytes = 8 * 1024 * 1024 }: TextMessagesOptions) {
    this.#deflate = deflate
    this.#onMessage = onMessage
    this.#onLost = onLost
    this.#maxMessageBytes = maxMessageBytes
    this.#queue = new InflateQueue<Message>({
      deflate,
      maxQueuedBytes,
      onData: (message, chunk) => this.#inflated(message, chunk),
      onDone: (message) => this.#turn(message),
      onError: () => this.#lose()
    })
  }

  /** No message is waiting to be inflated or handed on. */
  get settled (): boolean {
    return this.#queue.settled
  }

  get lost (): boolean {
    return this.#queue.stopped
  }

  onFrameStart (frame: FrameHeader): void {
    if (!this.#queue.open) return
    if (frame.opcode === Opcode.text) {
      if (frame.rsv1 && this.#deflate === undefined) return this.#lose()
      this.#current = { compressed: frame.rsv1, parts: [], bytes: 0, cut: false, tail: undefined, windowOnly: false }
    } else if (frame.opcode === Opcode.binary) {
      this.#current = joinsWindow(frame.rsv1, this.#deflate) ? { compressed: true, parts: [], bytes: 0, cut: false, tail: undefined, windowOnly: true } : undefined
    }
  }

  onFramePayload (frame: FrameHeader, slice: Buffer, offset: number): void {
    const message = this.#current
    if (message === undefined || frame.opcode >= Opcode.close || this.#queue.stopped) return
    if (message.compressed) {
      // Every compressed byte is needed to keep the inflater's window right, however long the message.
      message.bytes += slice.length
      if (!this.#queue.fits(message.bytes)) return this.#lose()
    } else {
      const room = this.#maxMessageBytes - message.bytes
      if (slice.length > room) {
        message.cut = true
        message.tail ??= new Tail()
        message.tail.push(copyOf(slice.subarray(room), frame, offset + room))
        if (room === 0) return
        slice = slice.subarray(0, room)
      }
      message.bytes += slice.length
    }
    message.parts.push(copyOf(slice, frame, offset))
  }

  onFrameEnd (frame: FrameHeader): void {
    if (frame.opcode >= Opcode.close || !frame.fin) return
    const message = this.#current
    this.#current = undefined
    if (message === undefined || this.#queue.stopped) return
    if (this.#deflate === undefined) {
      this.#deliver(Buffer.concat(message.parts), !message.cut, message.tail?.bytes)
      return
    }
    // A plain message behind compressed ones waits with them, so its bytes count against the
    // same bound: an upstream could otherwise pile up plain messages behind a slow inflate.
    if (!message.compressed && !this.#queue.fits(message.bytes)) return this.#lose()
    this.#queue.push(message)
  }

  /**
   * The connection has closed: no more frames come, but the messages already queued are
   * still inflated and handed on (under load the inflater runs behind the relay, and the
   * last ones carry response.completed with its usage); then the inflater is freed.
   */
  finish (): void {
    this.#current = undefined
    this.#queue.finish()
  }

  /** Stops reading: the inflater is freed and nothing more is handed on. */
  stop (): void {
    this.#current = undefined
    this.#queue.stop()
  }

  /** A chunk of the message being inflated: kept up to maxMessageBytes, then only its tail. */
  #inflated (message: Message, chunk: Buffer): void {
    if (message.windowOnly) return
    const room = this.#maxMessageBytes - this.#outBytes
    if (chunk.length > room) {
      this.#outComplete = false
      message.tail ??= new Tail()
      message.tail.push(chunk.subarray(Math.max(room, 0)))
    }
    if (room <= 0) return
    this.#out.push(chunk.length > room ? chunk.subarray(0, room) : chunk)
    this.#outBytes += Math.min(chunk.length, room)
  }

  /** A message's turn in the order sent: a plain one as it came, a compressed one as inflated. */
  #turn (message: Message): void {
    if (!message.compressed) return this.#deliver(Buffer.concat(message.parts), !message.cut, message.tail?.bytes)
    const out = this.#out
    const complete = this.#outComplete
    this.#out = []
    this.#outBytes = 0
    this.#outComplete = true
    if (!message.windowOnly) this.#deliver(Buffer.concat(out), complete, message.tail?.bytes)
  }

  #deliver (text: Buffer, complete: boolean, tail: Buffer | undefined): void {
    try {
      this.#onMessage(text, complete, tail)
    } catch {
      // Reading must never break the relay.
    }
  }

  #lose (): void {
    if (this.#queue.stopped) return
    this.stop()
    try {
      this.#onLost()
    } catch {
      // as above
    }
  }
}

/** A copy of a payload slice, unmasked: the slice is the relay's, and the relay's buffers are not ours to keep. */
function copyOf (slice: Buffer, frame: FrameHeader, offset: number): Buffer {
  return frame.maskKey === undefined ? Buffer.from(slice) : unmask(slice, frame.maskKey, offset)
}
