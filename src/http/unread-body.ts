import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Lets the rest of a request body nobody will read pass into nothing, so the connection reads
 * the client's next request after it (keep-alive stays correct, and a client still sending gets
 * its answer instead of a reset). For a body whose reader let go by destroying it: undici does
 * that to a streamed body when the upstream's answer completes first. Node's parser then stops
 * the socket at the next chunk it cannot push, and its own end-of-response dump does nothing for
 * a body already read from. This is that dump (`IncomingMessage._dump`) for such a body: the
 * parser drops a dumped message's chunks, and the socket is read again.
 */
export function discardUnreadBody (req: IncomingMessage, socket: Socket | null): void {
  (req as IncomingMessage & { _dumped: boolean })._dumped = true
  socket?.resume()
}
