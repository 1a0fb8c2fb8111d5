/**
 * Inflates the permessage-deflate messages (RFC 7692) of one direction of a WebSocket, from
 * copies of their payload, for reading only. One zlib stream serves the whole connection, as
 * the sender's compressor keeps its window across messages ("context takeover"); it is reset
 * after each message when the sender said `no_context_takeover`. zlib works on libuv's thread
 * pool, so the relay's thread only hands it bytes and takes its output.
 */
import { constants, createInflateRaw, type InflateRaw } from 'node:zlib'

/** What permessage-deflate the handshake agreed for the direction being read. */
export interface DeflateParams {
  /** The sender resets its compressor after every message. */
  noContextTakeover: boolean
}

/** What RFC 7692 §7.2.2 has the sender strip from the end of every compressed message. */
const DEFLATE_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])

/**
 * Most bytes one message may inflate to, as the HTTP path bounds an inflated body (8 MiB of JSON
 * × 4): far above any real request or event (codex's largest requests are a few MiB), while a
 * deflate bomb (1 MiB → 1 GiB) stops after a few tens of milliseconds of the thread pool's time
 * instead of seconds.
 */
export const MAX_INFLATED_MESSAGE_BYTES = 32 * 1024 * 1024

/**
 * A compressed message that is not text (binary) still joins the sender's window when it keeps
 * its context: the messages after it inflate right only if it is inflated too (RFC 7692 §7.2.1).
 */
export function joinsWindow (compressed: boolean, params: DeflateParams | undefined): boolean {
  return compressed && params !== undefined && !params.noContextTakeover
}

export class MessageInflater {
  readonly #params: DeflateParams
  readonly #onError: () => void
  #inflater: InflateRaw | undefined

  /**
   * `onError`: the data was not valid deflate, or a message inflated past
   * MAX_INFLATED_MESSAGE_BYTES; the inflater is unusable from then on (call `destroy`).
   */
  constructor (params: DeflateParams, onError: () => void) {
    this.#params = params
    this.#onError = onError
  }

  /**
   * Inflates one whole message (its compressed payload, in parts). `onData` gets the output in
   * order; `onDone` is called once all of it has come, unless the inflater failed or was
   * destroyed first. One message at a time: the next may start after `onDone`.
   */
  inflate (parts: Buffer[], onData: (chunk: Buffer) => void, onDone: () => void): void {
    const inflater = this.#inflater ??= this.#create()
    let inflated = 0
    const counted = (chunk: Buffer): void => {
      inflated += chunk.length
      if (inflated <= MAX_INFLATED_MESSAGE_BYTES) return onData(chunk)
      // Destroying stops zlib at its next output chunk; the rest of the window is lost with it.
      inflater.off('data', counted)
      inflater.destroy()
      this.#onError()
    }
    inflater.on('data', counted)
    for (const part of parts) inflater.write(part)
    inflater.write(DEFLATE_TRAILER)
    // The output of every write above has been emitted when the flush calls back.
    inflater.flush(constants.Z_SYNC_FLUSH, () => {
      inflater.off('data', counted)
      if (inflater.destroyed) return
      if (this.#params.noContextTakeover) inflater.reset()
      onDone()
    })
  }

  destroy (): void {
    this.#inflater?.destroy()
    this.#inflater = undefined
  }

  #create (): InflateRaw {
    // windowBits 15 inflates whatever window (8 to 15 bits) the sender agreed to use.
    const inflater = createInflateRaw({ windowBits: 15 })
    inflater.on('error', () => this.#onError())
    return inflater
  }
}
