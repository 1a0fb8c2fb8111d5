/**
 * An upgrade offer the gateway does not take (`Upgrade: h2c` from `curl --http2`, or any other
 * protocol but WebSocket) is ignored, as RFC 9110 §7.8 allows: the request is served as the
 * plain HTTP/1.1 request it also is, body included, and the connection stays an HTTP one.
 *
 * Node hands every request that offers an upgrade to the 'upgrade' listener with its body
 * unread (the bytes after the head, and the rest still on the socket). So the request's head
 * is written again without the offer and put back in front of those bytes, and the socket is
 * given back to the HTTP server as a new connection, whose parser reads the request, its body
 * and whatever follows on the connection like any other.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Socket } from 'node:net'

export function serveWithoutUpgrade (server: Server, req: IncomingMessage, socket: Socket, head: Buffer): void {
  if (head.length > 0) socket.unshift(head)
  socket.unshift(Buffer.from(headWithoutUpgrade(req), 'latin1'))
  server.emit('connection', socket)
}

/** The request line and headers as received, less `Upgrade` and the `upgrade` token of `Connection`. */
function headWithoutUpgrade (req: IncomingMessage): string {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`]
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (lower === 'upgrade') continue
    if (lower === 'connection') {
      // Other tokens (HTTP2-Settings) stay: they mark headers as hop-by-hop, not to be forwarded.
      const kept = value.split(',').map((token) => token.trim()).filter((token) => token !== '' && token.toLowerCase() !== 'upgrade')
      if (kept.length > 0) lines.push(`${name}: ${kept.join(', ')}`)
      continue
    }
    lines.push(`${name}: ${value}`)
  }
  return lines.join('\r\n') + '\r\n\r\n'
}
