/**
 * Responses over WebSocket: `GET /v1/...` with `Upgrade: websocket` (codex with
 * `supports_websockets`). The upgrade is proxied as a raw HTTP/1.1 tunnel rather than
 * terminated: the handshake goes upstream with the client's headers and the session's, a 101
 * comes back as the upstream wrote it, and from then on the two connections are joined byte for
 * byte (WebSocketTunnel). Why, and what it costs: docs/websocket.md.
 *
 * Node emits 'upgrade' outside Fastify's routing, so this plugin listens on the server itself.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import { logWebSocket, type WebSocketRecord } from '../observe/request-log.js'
import { routeLabel } from '../observe/route-label.js'
import { ResponseRelay, sendGatewayError, type EndedBy, type RelayOutcome } from '../relay/response-relay.js'
import type { FailureKind } from '../relay/upstream-failure.js'
import type { Session, SessionResolver } from '../session/resolve-session.js'
import type { UpstreamHeaders } from '../upstream/request-headers.js'
import { hasDotSegment, pathOf, upstreamPath } from '../upstream/upstream-path.js'
import { isWebSocketUpgrade, switchingProtocolsHead, upstreamDeflate } from './handshake.js'
import { responseOnSocket } from './socket-response.js'
import { WebSocketTunnel, type TunnelOutcome } from './tunnel.js'
import { UpgradeHandler } from './upgrade-handler.js'

export interface WebSocketDeps {
  config: GatewayConfig
  sessions: SessionResolver
  upstream: Dispatcher
  logger: Logger
  metrics: Pick<GatewayMetrics, 'exchangeStarted' | 'exchangeEnded' | 'tokensUsed'>
  /** The same client check as HTTP requests get (managed-key mode); undefined lets the request on. */
  auth: { check: (headers: IncomingHttpHeaders) => GatewayError | undefined }
  upstreamHeaders: UpstreamHeaders
  /** Shared with the HTTP routes: an open WebSocket is in flight until it closes. */
  inFlight: { count: number }
}

/** A WebSocket being opened or open, as shutdown sees it. */
interface OpenWebSocket {
  closeWhenIdle: () => void
  cut: () => void
}

export async function websocketRoutes (app: FastifyInstance, deps: WebSocketDeps): Promise<void> {
  const { config, sessions, upstream, logger, metrics, auth, upstreamHeaders, inFlight } = deps
  const open = new Set<OpenWebSocket>()
  let shuttingDown = false
  let grace: NodeJS.Timeout | undefined

  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // Node removed its own listeners from the socket before handing it over: an error
    // (a client reset) with no listener would throw.
    socket.on('error', () => {})
    // An upgrade pipelined behind a request still being answered waits for that answer: the
    // socket takes one response at a time, and Node emits 'upgrade' as soon as it is parsed.
    const previous = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    if (previous !== null && previous !== undefined) {
      previous.once('finish', () => { if (!socket.destroyed && socket.writable) onUpgrade(req, socket, head) })
      return
    }
    onUpgrade(req, socket, head)
  })

  function onUpgrade (req: IncomingMessage, socket: Socket, head: Buffer): void {
    try {
      answerUpgrade(req, socket, head)
    } catch (err) {
      // Never let one connection's failure escape into the server's parser callback.
      logger.error({ err }, 'answering an upgrade failed')
      socket.destroy()
    }
  }

  function answerUpgrade (req: IncomingMessage, socket: Socket, head: Buffer): void {
    if (!isWebSocketUpgrade(req)) {
      // Any other upgrade offer (h2c from `curl --http2`, …) is declined, as RFC 9110 §7.8
      // allows: the request is served as the plain HTTP/1.1 request it also is.
      app.server.emit('request', req, responseOnSocket(req, socket))
      return
    }
    const res = responseOnSocket(req, socket)
    const target = req.url ?? '/'
    const path = upstreamPath(target, config.upstream)
    if (path === undefined) {
      sendGatewayError(res, hasDotSegment(target) ? errors.badPath() : errors.notFound('GET', pathOf(target)))
      return
    }
    if (shuttingDown) return sendGatewayError(res, errors.shuttingDown())
    // 426 makes codex fall back to HTTP at once; anything else costs it seconds of retries.
    if (config.server.websocket === 'reject') return sendGatewayError(res, errors.webSocketsDisabled())
    const denied = auth.check(req.headers)
    if (denied !== undefined) return sendGatewayError(res, denied)
    let session: Session
    try {
      session = sessions.fromHeaders(req.headers) ?? sessions.fromConnection(socket)
    } catch (err) {
      sendGatewayError(res, err instanceof GatewayError ? err : errors.internal())
      return
    }
    proxyUpgrade(req, res, socket, head, path, session)
  }

  function proxyUpgrade (req: IncomingMessage, res: ServerResponse, socket: Socket, head: Buffer, path: string, session: Session): void {
    const startedAt = performance.now()
    const clientPath = pathOf(req.url ?? '/')
    const entry: OpenWebSocket = { closeWhenIdle: () => {}, cut: () => { socket.destroy() } }
    open.add(entry)
    inFlight.count++
    metrics.exchangeStarted('websocket')

    const finish = (record: Omit<WebSocketRecord, 'path' | 'session' | 'sessionSource' | 'durationMs'>, endedBy: EndedBy, failureKind?: FailureKind): void => {
      open.delete(entry)
      inFlight.count--
      const durationMs = performance.now() - startedAt
      metrics.exchangeEnded({
        route: routeLabel(clientPath),
        method: 'GET',
        status: record.status,
        transport: 'websocket',
        ttfbMs: record.ttfbMs,
        durationMs,
        endedBy,
        failureKind
      })
      logWebSocket(logger, { ...record, path: clientPath, session: session.id, sessionSource: session.source, durationMs })
    }

    // Whatever is not a 101 is answered on the client's socket like any HTTP response.
    const refusal = new ResponseRelay(res, startedAt, (outcome: RelayOutcome) => {
      finish({
        status: outcome.status,
        ttfbMs: outcome.ttfbMs,
        bytesIn: 0,
        bytesOut: outcome.bytesOut,
        endedBy: outcome.endedBy === 'client' ? 'client' : 'upstream',
        error: outcome.failure?.code
      }, outcome.endedBy, outcome.failure?.kind)
    })

    const onUpgraded = (rawHeaders: Buffer[], upstreamSocket: Socket): void => {
      upstreamSocket.on('error', () => {})
      if (socket.destroyed) {
        // The client left as the upstream said yes; the relay's 'close' listener reports it.
        upstreamSocket.destroy()
        return
      }
      const ttfbMs = performance.now() - startedAt
      res.detachSocket(socket) // from here on the socket is the tunnel's, not an HTTP response's
      socket.write(switchingProtocolsHead(rawHeaders))
      const tunnel = new WebSocketTunnel({
        client: socket,
        upstream: upstreamSocket,
        clientHead: head,
        deflate: upstreamDeflate(rawHeaders),
        onResponseId: (id) => sessions.learnResponse(session.id, id),
        onUsage: (usage) => {
          sessions.recordUsage(session.id, usage)
          metrics.tokensUsed(usage)
        },
        onEnd: (outcome: TunnelOutcome) => {
          finish({
            status: 101,
            ttfbMs,
            bytesIn: outcome.bytesIn,
            bytesOut: outcome.bytesOut,
            endedBy: outcome.endedBy,
            closeCode: outcome.closeCode
          // A closing handshake, from either side, is a WebSocket that ran to its end.
          }, outcome.closeCode !== undefined || outcome.endedBy === 'shutdown' ? 'complete' : outcome.endedBy)
        }
      })
      entry.closeWhenIdle = () => tunnel.closeWhenIdle()
      entry.cut = () => tunnel.cut()
      tunnel.start()
      if (shuttingDown) tunnel.closeWhenIdle()
    }

    upstream.dispatch({
      origin: config.upstream.origin,
      path,
      method: 'GET',
      headers: upstreamHeaders(req.rawHeaders, session.id),
      upgrade: 'websocket'
    }, new UpgradeHandler(refusal, onUpgraded))
  }

  // Shutdown: idle WebSockets close at once with 1001, busy ones when their response is over,
  // and whatever is still open when the grace period ends is cut (and counted as cut).
  app.addHook('preClose', async () => {
    shuttingDown = true
    for (const entry of [...open]) entry.closeWhenIdle()
    if (open.size > 0) {
      grace = setTimeout(() => { for (const entry of [...open]) entry.cut() }, config.server.shutdownGraceMs)
    }
  })
  app.addHook('onClose', async () => { clearTimeout(grace) })
}
