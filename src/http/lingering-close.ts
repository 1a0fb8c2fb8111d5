import type { IncomingMessage, ServerResponse } from 'node:http'
import { discardUnreadBody } from './unread-body.js'

/** At most this long reading into nothing after such an answer: nginx's `lingering_time`. */
const LINGER_MS = 30_000

/**
 * An answer that goes out before its request's body has all arrived closes the connection
 * (errors.ts, closeIfBodyUnread). Node closes the socket as soon as the answer is written, with
 * the client's unsent bytes still coming: the kernel answers them with a reset, and a client
 * still sending gets EPIPE or ECONNRESET, often before it has read the answer. A body over
 * BODY_LIMIT, a wrong key or an unreachable upstream then reads as a network failure. As nginx
 * does (`lingering_close`), the connection is half-closed after the answer instead, and the rest
 * of the body read into nothing until it ends, or for LINGER_MS at most; then the socket closes.
 */
export function lingerAfterAnswer (req: IncomingMessage, res: ServerResponse): void {
  // Taken now: a request whose parsing failed has no socket by the time its answer is written.
  const socket = req.socket as IncomingMessage['socket'] | null
  if (socket === null) return
  res.once('finish', () => {
    if (socket.destroyed) return
    // Node's end of a `Connection: close` answer (destroySoon) sends its FIN and destroys the
    // socket once that is written: left to do so, it would drop the body's rest with a reset.
    // Were that ever done otherwise, this does nothing and the connection closes as before.
    socket.off('finish', socket.destroy)
    discardUnreadBody(req, socket)
    req.resume()
    const close = (): void => {
      clearTimeout(deadline)
      socket.destroy()
    }
    const deadline = setTimeout(close, LINGER_MS).unref()
    socket.once('close', () => clearTimeout(deadline))
    if (req.complete) close()
    else req.once('end', close)
  })
}
