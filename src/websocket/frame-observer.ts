/**
 * Watches one direction of a proxied WebSocket, frame by frame, without altering or delaying
 * it: where frames begin and end (so the gateway knows when it may add a Close of its own),
 * the first Close frame and its status code, and, when asked, the text messages themselves
 * (see TextMessages and RequestMessages).
 */
import { FrameParser, Opcode, unmask, type FrameHeader, type FrameListener } from './frame-parser.js'

/** RFC 6455 §7.1.5: the code reported for a Close frame that carried none. */
export const NO_STATUS_CODE = 1005

export interface FrameObserverOptions {
  /** The first Close frame of this direction has been seen whole. */
  onClose?: (code: number) => void
  /** Reads this direction's messages too (TextMessages, or a client's RequestMessages). */
  messages?: FrameListener | undefined
}

export class FrameObserver implements FrameListener {
  readonly #parser: FrameParser
  readonly #options: FrameObserverOptions
  #closeCode: number | undefined
  #closeHead: Buffer | undefined

  constructor (options: FrameObserverOptions) {
    this.#options = options
    this.#parser = new FrameParser(this)
  }

  push (chunk: Buffer): void {
    this.#parser.push(chunk)
  }

  /** Between two frames: a frame written now would not split one of the peer's. */
  get atBoundary (): boolean {
    return this.#parser.atBoundary
  }

  /** The status code of the first Close frame this direction sent; undefined before one. */
  get closeCode (): number | undefined {
    return this.#closeCode
  }

  onFrameStart (frame: FrameHeader): void {
    if (frame.opcode === Opcode.close && this.#closeCode === undefined) this.#closeHead = Buffer.alloc(0)
    this.#options.messages?.onFrameStart(frame)
  }

  onFramePayload (frame: FrameHeader, slice: Buffer, offset: number): void {
    if (frame.opcode === Opcode.close && this.#closeHead !== undefined && offset < 2) {
      // The status code is the payload's first two bytes, which may arrive in two slices.
      const piece = slice.subarray(0, 2 - offset)
      this.#closeHead = Buffer.concat([this.#closeHead, frame.maskKey === undefined ? piece : unmask(piece, frame.maskKey, offset)])
    }
    this.#options.messages?.onFramePayload(frame, slice, offset)
  }

  onFrameEnd (frame: FrameHeader): void {
    if (frame.opcode === Opcode.close && this.#closeHead !== undefined) {
      this.#closeCode = this.#closeHead.length === 2 ? this.#closeHead.readUInt16BE(0) : NO_STATUS_CODE
      this.#closeHead = undefined
      this.#options.onClose?.(this.#closeCode)
    }
    this.#options.messages?.onFrameEnd(frame)
  }
}
