/**
 * A ServerResponse written straight onto an upgrade request's socket. Node hands 'upgrade'
 * listeners the bare socket, outside its HTTP machinery; this puts a response back on it, so
 * an upgrade that is not taken (refused by the upstream, rejected, or not a WebSocket one) is
 * answered by the same writers as any request (sendGatewayError, ResponseRelay). The
 * connection closes once the response is written: after an upgrade request nothing else may
 * follow on it.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

export function responseOnSocket (req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false // writes `Connection: close`
  res.assignSocket(socket)
  res.once('finish', () => { socket.destroySoon() })
  return res
}
