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

export class MessageInflater {
  readonly #params: DeflateParams
  readonly #onError: () => void
  #inflater: InflateRaw | undefined

  /** `onError`: the data was not valid deflate; the inflater is unusable from then on (call `destroy`). */
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
    inflater.on('data', onData)
    for (const part of parts) inflater.write(part)
    inflater.write(DEFLATE_TRAILER)
    // The output of every write above has been emitted when the flush calls back.
    inflater.flush(constants.Z_SYNC_FLUSH, () => {
      inflater.off('data', onData)
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
