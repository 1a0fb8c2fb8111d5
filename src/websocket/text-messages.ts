/**
 * Reassembles the text messages of one direction from its frames, for reading only: fragments
 * are joined, and permessage-deflate messages (RFC 7692) are inflated from a copy of their
 * payload (MessageInflater), so the relayed bytes are never touched or held back. Messages are
 * handed on in the order they were sent, whether they needed inflating or not.
 */
import { Opcode, unmask, type FrameHeader, type FrameListener } from './frame-parser.js'
import { joinsWindow, MessageInflater, type DeflateParams } from './message-inflater.js'

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
  /** Compressed bytes allowed to wait for the inflater before reading gives up. */
  maxQueuedBytes?: number
}

interface Message {
  compressed: boolean
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
  readonly #maxQueuedBytes: number
  /** The text message whose frames are arriving; undefined between messages and in binary ones. */
  #current: Message | undefined
  /** Whole messages waiting for the inflater to finish the one before. */
  readonly #queue: Message[] = []
  /** The connection closed: drain the queue, then stop. */
  #finishing = false
  #queuedBytes = 0
  #inflater: MessageInflater | undefined
  #inflating = false
  #lost = false

  constructor ({ deflate, onMessage, onLost, maxMessageBytes = 1024 * 1024, maxQueuedBytes = 8 * 1024 * 1024 }: TextMessagesOptions) {
    this.#deflate = deflate
    this.#onMessage = onMessage
    this.#onLost = onLost
    this.#maxMessageBytes = maxMessageBytes
    this.#maxQueuedBytes = maxQueuedBytes
  }

  /** No message is waiting to be inflated or handed on. */
  get settled (): boolean {
    return this.#lost || (!this.#inflating && this.#queue.length === 0)
  }

  get lost (): boolean {
    return this.#lost
  }

  onFrameStart (frame: FrameHeader): void {
    if (this.#lost || this.#finishing) return
    if (frame.opcode === Opcode.text) {
      if (frame.rsv1 && this.#deflate === undefined) return this.#lose()
      this.#current = { compressed: frame.rsv1, parts: [], bytes: 0, cut: false, tail: undefined, windowOnly: false }
    } else if (frame.opcode === Opcode.binary) {
      this.#current = joinsWindow(frame.rsv1, this.#deflate) ? { compressed: true, parts: [], bytes: 0, cut: false, tail: undefined, windowOnly: true } : undefined
    }
  }

  onFramePayload (frame: FrameHeader, slice: Buffer, offset: number): void {
    const message = this.#current
    if (message === undefined || frame.opcode >= Opcode.close || this.#lost) return
    if (message.compressed) {
      // Every compressed byte is needed to keep the inflater's window right, however long the message.
      message.bytes += slice.length
      if (this.#queuedBytes + message.bytes > this.#maxQueuedBytes) return this.#lose()
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
    if (message === undefined || this.#lost) return
    if (this.#deflate === undefined) {
      this.#deliver(Buffer.concat(message.parts), !message.cut, message.tail?.bytes)
      return
    }
    this.#queue.push(message)
    if (message.compressed) this.#queuedBytes += message.bytes
    this.#next()
  }

  /**
   * The connection has closed: no more frames come, but the messages already queued are
   * still inflated and handed on (under load the inflater runs behind the relay, and the
   * last ones carry response.completed with its usage); then the inflater is freed.
   */
  finish (): void {
    this.#current = undefined
    this.#finishing = true
    if (!this.#inflating && this.#queue.length === 0) this.stop()
  }

  /** Stops reading: the inflater is freed and nothing more is handed on. */
  stop (): void {
    this.#lost = true
    this.#queue.length = 0
    this.#current = undefined
    this.#inflater?.destroy()
    this.#inflater = undefined
  }

  #next (): void {
    while (!this.#inflating && !this.#lost) {
      const message = this.#queue.shift()
      if (message === undefined) {
        if (this.#finishing) this.stop()
        return
      }
      if (!message.compressed) {
        this.#deliver(Buffer.concat(message.parts), !message.cut, message.tail?.bytes)
        continue
      }
      this.#queuedBytes -= message.bytes
      this.#inflate(message)
    }
  }

  #inflate (message: Message): void {
    this.#inflating = true
    this.#inflater ??= new MessageInflater(this.#deflate!, () => this.#lose())
    const out: Buffer[] = []
    let outBytes = 0
    let complete = true
    const onData = (chunk: Buffer): void => {
      if (message.windowOnly) return
      const room = this.#maxMessageBytes - outBytes
      if (chunk.length > room) {
        complete = false
        message.tail ??= new Tail()
        message.tail.push(chunk.subarray(Math.max(room, 0)))
      }
      if (room <= 0) return
      out.push(chunk.length > room ? chunk.subarray(0, room) : chunk)
      outBytes += Math.min(chunk.length, room)
    }
    this.#inflater.inflate(message.parts, onData, () => {
      if (this.#lost) return
      this.#inflating = false
      if (!message.windowOnly) this.#deliver(Buffer.concat(out), complete, message.tail?.bytes)
      this.#next()
    })
  }

  #deliver (text: Buffer, complete: boolean, tail: Buffer | undefined): void {
    try {
      this.#onMessage(text, complete, tail)
    } catch {
      // Reading must never break the relay.
    }
  }

  #lose (): void {
    if (this.#lost) return
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
