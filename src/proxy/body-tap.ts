import type { IncomingMessage } from 'node:http'
import { afterWrite, SLICE_BYTES } from '../observe/idle-reading.js'
import type { PrefixFingerprint } from '../observe/prefix-fingerprint.js'

/**
 * Shows a client's streamed body to `tap` chunk by chunk as undici sends it upstream: the same
 * buffers, in order, never copied. Call before the request is dispatched. A second 'data'
 * listener would set the stream flowing before undici listens, so the stream is paused here;
 * undici's stream writer resumes it once it listens too, and both see every chunk.
 */
export function tapStreamedBody (req: IncomingMessage, tap: PrefixFingerprint): void {
  req.on('data', afterWrite(tap))
  req.pause()
}

/**
 * A body already read whole (to decide its session, or to be replayed): one slice's worth is
 * just held, for `result()` to read when the call ends (a few µs, no turns of the event loop
 * scheduled); a larger one is read on idle turns like a streamed one.
 */
export function tapReadBody (tap: PrefixFingerprint, body: Buffer): void {
  if (body.length <= SLICE_BYTES) tap.hold(body)
  else afterWrite(tap, Infinity)(body) // kept whole anyway (sent, or kept for a replay): read a slice per turn
}
