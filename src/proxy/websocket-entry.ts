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
import type { Session, SessionResolver } from '../session/resolve-session.js'
import { upstreamPath } from '../upstream/upstream-path.js'
import type { Upstream, UpstreamSet } from '../upstream/upstream-set.js'
import { clientDeflate, isWebSocketUpgrade, switchingProtocolsHead, upstreamDeflate } from '../websocket/handshake.js'
import { responseOnSocket } from '../websocket/socket-response.js'
import { WebSocketTunnel, type TunnelOutcome } from '../websocket/tunnel.js'
import { UpgradeHandler } from '../websocket/upgrade-handler.js'
import type { Admission } from './admission.js'
import { UpstreamAttempts, type AttemptDeps, type AttemptGate } from './attempts.js'
import { spannedGate } from './attempt-span.js'
import { serveWithoutUpgrade } from './declined-upgrade.js'
import { Exchange, type ExchangeDeps } from './exchange.js'
import { ALWAYS } from './replay-body.js'

export interface WebSocketEntryDeps {
  admission: Admission
  exchanges: ExchangeDeps
  sessions: SessionResolver
  upstream: Dispatcher
  upstreams: UpstreamSet
  attempts: AttemptDeps
  logger: Logger
}

/** Listens for upgrade requests on `server`. */
export function acceptWebSockets (server: Server, deps: WebSocketEntryDeps): void {
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // Node removed its own listeners from the socket before handing it over: an error
    // (a client reset) with no listener would throw.
    socket.on('error', () => {})
    socket.once('end', leaveOnEarlyEnd)
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

/**
 * A FIN before the tunnel starts is the client leaving. Node has already emitted the socket's
 * only 'end', so the tunnel could never pass it on, and the half-open socket would keep the
 * upstream handshake (or WebSocket) open: destroying it lets the relay's 'close' listener abort
 * the upstream and end the exchange as the client's.
 */
function leaveOnEarlyEnd (this: Socket): void {
  this.destroy()
}

function onUpgrade (server: Server, deps: WebSocketEntryDeps, req: IncomingMessage, socket: Socket, head: Buffer): void {
  try {
    if (!isWebSocketUpgrade(req)) {
      socket.off('end', leaveOnEarlyEnd) // the HTTP server's own handling takes over
      serveWithoutUpgrade(server, req, socket, head)
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
  const single = deps.upstreams.single
  if (single !== undefined) {
    exchange.admit(session, () => socket.destroy())
    exchange.upstream = single.name
    exchange.attempts = 1
    sendUpgrade(deps, exchange, req, res, socket, head, session, single, admitted.upstreamPath, undefined)
    return
  }
  routeUpgrade(deps, exchange, req, res, socket, head, session).catch((err: unknown) => {
    deps.logger.error({ err }, 'routing an upgrade failed')
    socket.destroy()
  })
}

/** Several upstreams: chosen at the handshake by the HTTP rules; failover only before a 101. */
async function routeUpgrade (deps: WebSocketEntryDeps, exchange: Exchange, req: IncomingMessage, res: ServerResponse, socket: Socket, head: Buffer, session: Session): Promise<void> {
  const boundName = await deps.sessions.upstreamOf(session.id)
  if (socket.destroyed) return exchange.endClientGone() // the client left while its upstream was looked up
  const plan = deps.upstreams.plan(session.id, boundName, false)
  if (plan.refusal !== undefined) {
    exchange.refuse(plan.refusal, res)
    return
  }
  exchange.admit(session, () => socket.destroy())
  const clientTarget = req.url ?? '/'
  new UpstreamAttempts(deps.attempts, exchange, {
    order: plan.order,
    boundName,
    rebindReason: plan.rebindReason,
    keepsBinding: false,
    replayable: ALWAYS, // a handshake has no body
    clientGone: () => socket.destroyed
  }, (upstream, gate) => {
    sendUpgrade(deps, exchange, req, res, socket, head, session, upstream, upstreamPath(clientTarget, upstream.target)!, gate)
  }).next()
}

/** One attempt: the handshake sent to one upstream. */
function sendUpgrade (deps: WebSocketEntryDeps, exchange: Exchange, req: IncomingMessage, res: ServerResponse, socket: Socket, head: Buffer, session: Session, upstream: Upstream, path: string, gate: AttemptGate | undefined): void {
  // Whatever is not a 101 is answered on the client's socket like any HTTP response.
  // One attempt, one client span (when traced); a handshake retried elsewhere ends its own.
  const attempt = exchange.startAttempt(upstream.target.origin, 'GET', path)
  const relayGate = gate === undefined || attempt === undefined ? gate : spannedGate(gate, attempt, exchange.startedAt)
  const refusal = new ResponseRelay(res, exchange.startedAt, (outcome: RelayOutcome) => {
    attempt?.end(outcome)
    const { status, endedBy, failure, stoppedWith, ttfbMs, bytesOut } = outcome
    exchange.end({
      status, endedBy, failure, stoppedWith, ttfbMs, bytesOut,
      webSocket: { bytesIn: 0, closeCode: undefined, closedBy: endedBy === 'client' ? 'client' : 'upstream' }
    })
  }, undefined, relayGate)
  const onUpgraded = (rawHeaders: Buffer[], upstreamSocket: Socket): void => {
    upstreamSocket.on('error', () => {})
    attempt?.end({ status: 101, endedBy: 'complete', ttfbMs: performance.now() - exchange.startedAt })
    if (socket.destroyed) {
      // The client left as the upstream said yes; the relay's 'close' listener reports it.
      upstreamSocket.destroy()
      return
    }
    gate?.served()
    res.detachSocket(socket) // from here on the socket is the tunnel's, not an HTTP response's
    socket.off('end', leaveOnEarlyEnd) // the tunnel passes a FIN on from now
    socket.write(switchingProtocolsHead(rawHeaders))
    startTunnel(exchange, socket, upstreamSocket, head, rawHeaders)
  }
  deps.upstream.dispatch({
    origin: upstream.target.origin,
    path,
    method: 'GET',
    headers: upstream.headers(req.rawHeaders, session.id, attempt?.traceHeaders),
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
    clientDeflate: clientDeflate(rawHeaders),
    readsPrefixes: exchange.readsPrefixes,
    onResponseId: (id) => exchange.onResponseId(id),
    // Cache analysis asks for the prefix of the request (response.create) each response answers.
    onResponseDone: (usage, prefix) => exchange.onWebSocketResponse(usage, exchange.readsPrefixes ? prefix() : undefined),
    onRequest: (startedAt) => exchange.onWebSocketRequest(startedAt),
    onResponseModel: (model) => exchange.onResponseModel(model),
    onResponseEvent: exchange.traced ? (type) => exchange.onResponseEvent(type) : undefined,
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
