import type { PrefixFingerprint } from './prefix-fingerprint.js'

/** Bytes a tap reads in one turn of the event loop: no turn waits long behind it. */
export const SLICE_BYTES = 64 * 1024

/**
 * Hands `tap` each chunk to hold (the caller's own buffer, not a copy) and has it read them
 * on turns of the event loop when no new chunk came: while bytes stream in as fast as the
 * gateway passes them on, reading waits, then goes on a slice per turn while the upstream reads
 * the request and thinks. Nothing the tap does stands between a client's bytes and the upstream,
 * and no turn runs long behind it; what is left when the call ends is read by `result()`.
 * Used for HTTP request bodies and for the client messages of a WebSocket.
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
