import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { GatewayError } from '../errors.js'

/**
 * Writes a complete HTTP/1.1 error response straight onto a socket that has no
 * ServerResponse (parser errors, CONNECT, refused upgrades) and closes it.
 */
export function endSocketWithError (socket: Duplex, error: GatewayError, extraHeaders = ''): void {
  const body = error.body()
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    extraHeaders +
    'connection: close\r\n\r\n' + body
  )
}
