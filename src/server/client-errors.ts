import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { errors, type GatewayError } from '../errors.js'

/**
 * Answers requests Node's HTTP parser refused (malformed, smuggling-shaped, headers too
 * large) with an OpenAI-style body and closes the socket; never leaves it hanging. When a
 * valid request before the bad bytes is still being answered, its answer goes first: the
 * upstream ran (and billed) it, and a client reads responses in order. A body that stalls past
 * SERVER_REQUEST_TIMEOUT_MS, or that Node cannot parse, before its answer began is stopped
 * instead (`failRequestBody`).
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
  // An unfinished request's body is what timed out or held the bad bytes: Node emitted the
  // request at its headers, and it may be on its way upstream, which waits for that body.
  if (!answering.req.complete && !answering.headersSent) {
    failRequestBody(answering, error)
    return
  }
  // Otherwise the response in flight answers a complete request before the late one, or it
  // already began: its headers went out while its body was still arriving (the upstream
  // answered early). It is the client's answer; the connection closes after it, and a stalled
  // answer is cut by the upstream's idle timeout.
  answering.once('finish', () => { if (socket.writable) error.endSocket(socket); else socket.destroy() })
  answering.once('close', () => { if (!answering.writableFinished) socket.destroy() })
}

/**
 * The request being answered stalled mid-body (SERVER_REQUEST_TIMEOUT_MS: a 408) or sent a body
 * Node cannot parse (a 400) before anything of its answer went out. Its body stream fails with
 * that error, so whatever consumes it stops as it would for a body over BODY_LIMIT: the body
 * read for the session refuses the request, a body streaming upstream aborts its attempt and
 * the relay answers; either way the exchange ends once, with that error. `Connection: close`
 * follows: the rest of the body is never read.
 */
function failRequestBody (res: ServerResponse, error: GatewayError): void {
  res.shouldKeepAlive = false
  const req = res.req
  // Destroying an unfinished request destroys its socket, which the 408 still has to go out
  // on; undici detaches a request body the same way before destroying it (nodejs/node#38505).
  ;(req as Omit<IncomingMessage, 'socket'> & { socket: Socket | null }).socket = null
  // A request emits its error only to a listener; undici, when the body reaches it only later
  // (routing still looking up the session's upstream), sees the failure only if it was emitted.
  req.on('error', () => {})
  req.destroy(error)
}

/**
 * An `Expect` other than `100-continue` (RFC 9110 §10.1.1): Node's own 417 has no body, so
 * the gateway answers it; nothing goes upstream.
 */
export function refuseExpectation (_req: IncomingMessage, res: ServerResponse): void {
  errors.expectationFailed().send(res)
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
