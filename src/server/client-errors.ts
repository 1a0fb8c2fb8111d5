import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
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
  error.endSocket(socket)
}

/** CONNECT asks for a tunnel to any host; the gateway only ever talks to its upstream. */
export function refuseConnect (_request: unknown, socket: Duplex): void {
  errors.methodNotAllowed('CONNECT').endSocket(socket)
}

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
