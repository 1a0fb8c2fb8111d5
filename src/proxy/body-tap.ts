import type { IncomingMessage } from 'node:http'
import type { PrefixFingerprint } from '../observe/prefix-fingerprint.js'

/** Bytes of body the tap reads in one turn of the event loop: no turn waits long behind it. */
const SLICE_BYTES = 64 * 1024

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
  else afterWrite(tap)(body)
}

/**
 * Hands `tap` each chunk to hold (the request's own buffer, not a copy) and has it read them
 * on turns of the event loop when no new chunk came: while a body streams in as fast as the
 * gateway passes it on, reading waits, then goes on a slice per turn while the upstream reads
 * the request and thinks. Nothing the tap does stands between a client's bytes and the upstream,
 * and no turn runs long behind it; what is left when the call ends is read by `result()`.
 */
export function afterWrite (tap: PrefixFingerprint): (chunk: Buffer) => void {
  let arrived = false
  let scheduled = false
  const turn = (): void => {
    if (arrived) {
      arrived = false // more may follow at once: wait a turn
      setImmediate(turn)
    } else if (tap.readHeld(SLICE_BYTES)) {
      setImmediate(turn)
    } else {
      scheduled = false
    }
  }
  return (chunk) => {
    tap.hold(chunk)
    arrived = true
    if (scheduled) return
    scheduled = true
    setImmediate(turn)
  }
}
