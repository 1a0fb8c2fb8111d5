import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { errors, type GatewayError } from '../errors.js'

/**
 * Answers requests Node's HTTP parser refused (malformed, smuggling-shaped, headers too
 * large) with an OpenAI-style body and closes the socket; never leaves it hanging. When a
 * valid request before the bad bytes is still being answered, its answer goes first: the
 * upstream ran (and billed) it, and a client reads responses in order.
 */
export function answerClientError (err: Error & { code?: string }, socket: Socket): void {
  const error = gatewayErrorFor(err.code)
  if (!socket.writable || error === undefined) {
    socket.destroy()
    return
  }
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  // A client that closed its side mid-request (EOF) is gone: answering at once ends the socket,
  // and with it the request in flight, so its upstream work is cancelled.
  if (answering === null || answering === undefined || answering.writableFinished || err.code === 'HPE_INVALID_EOF_STATE') {
    error.endSocket(socket)
    return
  }
  answering.once('finish', () => { if (socket.writable) error.endSocket(socket); else socket.destroy() })
  answering.once('close', () => { if (!answering.writableFinished) socket.destroy() })
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
