/**
 * Where a WebSocket enters: `GET /v1/...` with `Upgrade: websocket` (codex with
 * `supports_websockets`). The upgrade is proxied as a raw HTTP/1.1 tunnel rather than
 * terminated: the handshake goes upstream with the client's headers and the session's, a 101
 * comes back as the upstream wrote it, and from then on the two connections are joined byte for
 * byte (WebSocketTunnel). Why, and what it costs: docs/websocket.md.
 *
 * Node emits 'upgrade' outside its request handling, so this listens on the server itself.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import { ResponseRelay, type RelayOutcome } from '../relay/response-relay.js'
import type { SessionResolver } from '../session/resolve-session.js'
import type { UpstreamHeaders } from '../upstream/request-headers.js'
import type { UpstreamTarget } from '../upstream/upstream-path.js'
import { isWebSocketUpgrade, switchingProtocolsHead, upstreamDeflate } from '../websocket/handshake.js'
import { responseOnSocket } from '../websocket/socket-response.js'
import { WebSocketTunnel, type TunnelOutcome } from '../websocket/tunnel.js'
import { UpgradeHandler } from '../websocket/upgrade-handler.js'
import type { Admission } from './admission.js'
import { Exchange, type ExchangeDeps } from './exchange.js'

export interface WebSocketEntryDeps {
  target: UpstreamTarget
  admission: Admission
  exchanges: ExchangeDeps
  sessions: SessionResolver
  upstream: Dispatcher
  upstreamHeaders: UpstreamHeaders
  logger: Logger
}

/** Listens for upgrade requests on `server`. */
export function acceptWebSockets (server: Server, deps: WebSocketEntryDeps): void {
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // Node removed its own listeners from the socket before handing it over: an error
    // (a client reset) with no listener would throw.
    socket.on('error', () => {})
    // An upgrade pipelined behind a request still being answered waits for that answer: the
    // socket takes one response at a time, and Node emits 'upgrade' as soon as it is parsed.
    const previous = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    if (previous !== null && previous !== undefined) {
      previous.once('finish', () => { if (!socket.destroyed && socket.writable) onUpgrade(server, deps, req, socket, head) })
      return
    }
    onUpgrade(server, deps, req, socket, head)
  })
}

function onUpgrade (server: Server, deps: WebSocketEntryDeps, req: IncomingMessage, socket: Socket, head: Buffer): void {
  try {
    if (!isWebSocketUpgrade(req)) {
      // Any other upgrade offer (h2c from `curl --http2`, …) is declined, as RFC 9110 §7.8
      // allows: the request is served as the plain HTTP/1.1 request it also is.
      server.emit('request', req, responseOnSocket(req, socket))
      return
    }
    answerUpgrade(deps, req, socket, head)
  } catch (err) {
    // Never let one connection's failure escape into the server's parser callback.
    deps.logger.error({ err }, 'answering an upgrade failed')
    socket.destroy()
  }
}

function answerUpgrade (deps: WebSocketEntryDeps, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const exchange = new Exchange(deps.exchanges, 'websocket', req)
  const res = responseOnSocket(req, socket)
  const admitted = deps.admission.admit(req, 'websocket')
  if (admitted instanceof GatewayError) {
    exchange.refuse(admitted, res)
    return
  }
  const session = admitted.sessionFromHeader ?? deps.sessions.fromConnection(socket)
  exchange.admit(session, () => socket.destroy())
  const attempt = exchange.startAttempt(deps.target.origin, 'GET', admitted.upstreamPath)

  // Whatever is not a 101 is answered on the client's socket like any HTTP response.
  const refusal = new ResponseRelay(res, exchange.startedAt, (outcome: RelayOutcome) => {
    attempt?.end(outcome)
    exchange.end({
      ...outcome,
      webSocket: { bytesIn: 0, closeCode: undefined, closedBy: outcome.endedBy === 'client' ? 'client' : 'upstream' }
    })
  })
  const onUpgraded = (rawHeaders: Buffer[], upstreamSocket: Socket): void => {
    upstreamSocket.on('error', () => {})
    attempt?.end({ status: 101, endedBy: 'complete', ttfbMs: performance.now() - exchange.startedAt })
    if (socket.destroyed) {
      // The client left as the upstream said yes; the relay's 'close' listener reports it.
      upstreamSocket.destroy()
      return
    }
    res.detachSocket(socket) // from here on the socket is the tunnel's, not an HTTP response's
    socket.write(switchingProtocolsHead(rawHeaders))
    startTunnel(exchange, socket, upstreamSocket, head, rawHeaders)
  }
  deps.upstream.dispatch({
    origin: deps.target.origin,
    path: admitted.upstreamPath,
    method: 'GET',
    headers: deps.upstreamHeaders(req.rawHeaders, session.id, attempt?.traceHeaders),
    upgrade: 'websocket'
  }, new UpgradeHandler(refusal, onUpgraded))
}

function startTunnel (exchange: Exchange, client: Socket, upstream: Socket, head: Buffer, rawHeaders: Buffer[]): void {
  const ttfbMs = performance.now() - exchange.startedAt
  const tunnel = new WebSocketTunnel({
    client,
    upstream,
    clientHead: head,
    deflate: upstreamDeflate(rawHeaders),
    onResponseId: (id) => exchange.onResponseId(id),
    onUsage: (usage) => exchange.onUsage(usage),
    onClientMessage: () => exchange.onCallStart(),
    onResponseModel: (model) => exchange.onResponseModel(model),
    traced: !exchange.traced
      ? undefined
      : {
          onClientMessage: () => exchange.onClientMessage(),
          onResponseEvent: (type) => exchange.onResponseEvent(type)
        },
    onEnd: (outcome: TunnelOutcome) => exchange.end({
      status: 101,
      ttfbMs,
      bytesOut: outcome.bytesOut,
      // A closing handshake, from either side, is a WebSocket that ran to its end.
      endedBy: outcome.closeCode !== undefined || outcome.endedBy === 'shutdown' ? 'complete' : outcome.endedBy,
      webSocket: { bytesIn: outcome.bytesIn, closeCode: outcome.closeCode, closedBy: outcome.endedBy }
    })
  })
  tunnel.start()
  // Shutdown: idle WebSockets close at once with 1001, busy ones when their response is over,
  // and whatever is still open when the grace period ends is cut.
  exchange.onDrain(() => tunnel.closeWhenIdle(), () => tunnel.cut())
}
