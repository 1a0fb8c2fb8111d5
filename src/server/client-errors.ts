import type { Socket } from 'node:net'
import { errors, type GatewayError } from '../errors.js'

/**
 * Answers requests Node's HTTP parser refused (malformed, smuggling-shaped, headers too
 * large) with an OpenAI-style body and closes the socket; never leaves it hanging.
 */
export function answerClientError (err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable || (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true) {
    socket.destroy()
    return
  }
  const error = gatewayErrorFor(err.code)
  if (error === undefined) {
    socket.destroy()
    return
  }
  const body = error.body()
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' + body
  )
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }

function gatewayErrorFor (code: string | undefined): GatewayError | undefined {
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined // the client is gone; there is nobody to answer
    case 'HPE_HEADER_OVERFLOW':
      return errors.headersTooLarge()
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return errors.requestTimeout()
    default:
      return errors.malformedRequest()
  }
}
