import type { PrefixFingerprint } from './prefix-fingerprint.js'

/** Bytes a tap reads in one turn of the event loop: no turn waits long behind it. */
export const SLICE_BYTES = 64 * 1024

/**
 * Bytes a tap may hold unread. Idle turns do not come while a body or message streams in as
 * fast as it is passed on, so past this the tap reads what it holds once the bytes in hand
 * were written on (a microtask, not a turn): else all of a long one was held until it had
 * passed (a WebSocket message's copies: 256 MiB for a 256 MiB message). codex's calls
 * (40–500 kB) stay below it.
 */
export const MAX_UNREAD_BYTES = 1024 * 1024

/**
 * Hands `tap` each chunk to hold (the caller's own buffer, not a copy) and has it read them
 * on turns of the event loop when no new chunk came: while bytes stream in as fast as the
 * gateway passes them on, reading waits, then goes on a slice per turn while the upstream reads
 * the request and thinks, or at once when MAX_UNREAD_BYTES wait. Nothing the tap does stands
 * between a client's bytes and the upstream; what is left when the call ends is read by
 * `result()`. Used for HTTP request bodies and for the client messages of a WebSocket.
 * `maxUnread`: Infinity for a body already held whole elsewhere (its tap costs no memory).
 */
export function afterWrite (tap: PrefixFingerprint, maxUnread = MAX_UNREAD_BYTES): (chunk: Buffer) => void {
  let arrived = false
  let scheduled = false
  /** Bytes held since the tap last had nothing held (an upper bound: slices read meanwhile are not taken off). */
  let unread = 0
  const turn = (): void => {
    if (arrived) {
      arrived = false // more may follow at once: wait a turn
      setImmediate(turn)
    } else if (tap.readHeld(SLICE_BYTES)) {
      setImmediate(turn)
    } else {
      unread = 0
      scheduled = false
    }
  }
  let readingSoon = false
  const readNow = (): void => {
    readingSoon = false
    unread = 0
    tap.readHeld()
  }
  return (chunk) => {
    tap.hold(chunk)
    unread += chunk.length
    if (unread > maxUnread && !readingSoon) {
      // A microtask, not now: an HTTP body's chunk is shown to the tap before undici writes it.
      readingSoon = true
      queueMicrotask(readNow)
    }
    arrived = true
    if (scheduled) return
    scheduled = true
    setImmediate(turn)
  }
}
