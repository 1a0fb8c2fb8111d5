import type { IncomingMessage } from 'node:http'
import type { PrefixFingerprint } from '../observe/prefix-fingerprint.js'

/**
 * Shows a client's streamed body to `tap` chunk by chunk as undici sends it upstream: the same
 * buffers, in order, never copied or held. Call before the request is dispatched. A second
 * 'data' listener would set the stream flowing before undici listens, so the stream is paused
 * here; undici's stream writer resumes it once it listens too, and both see every chunk.
 */
export function tapStreamedBody (req: IncomingMessage, tap: PrefixFingerprint): void {
  req.on('data', (chunk: Buffer) => tap.push(chunk))
  req.pause()
}
