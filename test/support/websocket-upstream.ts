/**
 * A test upstream that speaks Responses over WebSocket as well as HTTP: the mock upstream's
 * HTTP server, plus an 'upgrade' listener that records every handshake and accepts it with the
 * `ws` library (permessage-deflate on or off), or lets a test answer it itself.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { responseStream, startMockUpstream, type MockUpstream, type UpstreamHandler } from './mock-upstream.js'
import { WebSocketServer, type WsSocket } from './ws.js'

export interface UpstreamHandshake {
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
}

export interface UpstreamWebSocket {
  ws: WsSocket
  handshake: UpstreamHandshake
  socket: Socket
  /** Resolves with the close code and reason the upstream's end saw (1006 when the connection just dropped). */
  closed: Promise<{ code: number, reason: string }>
  /** Resolves with the next message the client sent through the gateway. */
  nextMessage: () => Promise<{ data: Buffer, isBinary: boolean }>
}

export type RawUpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void

export interface WebSocketUpstream {
  http: MockUpstream
  /** `http://127.0.0.1:PORT/v1`, the gateway's UPSTREAM_URL. */
  url: string
  handshakes: UpstreamHandshake[]
  nextHandshake: () => Promise<UpstreamHandshake>
  /** Resolves with the next WebSocket the upstream accepted (with the `ws` library). */
  nextWebSocket: () => Promise<UpstreamWebSocket>
  /** Answers the next upgrades with `handler` instead of accepting them. */
  handleUpgrade: (handler: RawUpgradeHandler | undefined) => void
  close: () => Promise<void>
}

export interface WebSocketUpstreamOptions {
  /** The `ws` server's permessage-deflate: false, true (its defaults), or its options (e.g. `{ threshold: 0 }`). */
  perMessageDeflate?: boolean | Record<string, unknown>
  http?: UpstreamHandler
}

export async function startWebSocketUpstream ({ perMessageDeflate = false, http }: WebSocketUpstreamOptions = {}): Promise<WebSocketUpstream> {
  const mock = await startMockUpstream(http)
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate })
  const handshakes: UpstreamHandshake[] = []
  const handshakeWaiters: Array<(handshake: UpstreamHandshake) => void> = []
  const accepted: UpstreamWebSocket[] = []
  const acceptWaiters: Array<(ws: UpstreamWebSocket) => void> = []
  let custom: RawUpgradeHandler | undefined

  mock.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {})
    const handshake = { url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders }
    handshakes.push(handshake)
    handshakeWaiters.shift()?.(handshake)
    if (custom !== undefined) {
      custom(req, socket, head)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const messages: Array<{ data: Buffer, isBinary: boolean }> = []
      const messageWaiters: Array<(message: { data: Buffer, isBinary: boolean }) => void> = []
      ws.on('message', (data, isBinary) => {
        const message = { data, isBinary }
        const waiter = messageWaiters.shift()
        if (waiter !== undefined) waiter(message)
        else messages.push(message)
      })
      ws.on('error', () => {})
      const upstreamWs: UpstreamWebSocket = {
        ws,
        handshake,
        socket,
        closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }))),
        nextMessage: async () => messages.shift() ?? await new Promise((resolve) => messageWaiters.push(resolve))
      }
      const waiter = acceptWaiters.shift()
      if (waiter !== undefined) waiter(upstreamWs)
      else accepted.push(upstreamWs)
    })
  })

  return {
    http: mock,
    url: mock.url,
    handshakes,
    nextHandshake: async () => await new Promise((resolve) => handshakeWaiters.push(resolve)),
    nextWebSocket: async () => accepted.shift() ?? await new Promise((resolve) => acceptWaiters.push(resolve)),
    handleUpgrade: (handler) => { custom = handler },
    close: async () => {
      wss.close()
      await mock.close()
    }
  }
}

/** The events of one complete Responses answer, as the JSON texts a WebSocket sends, one per message. */
export function responseEvents (responseId: string, text: string, usage?: Record<string, unknown>): string[] {
  return responseStream(responseId, text, usage)
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice('data: '.length))
}

/**
 * Answers every `response.create` the client sends with a complete response, ids made by
 * `nextId`; resolves each time with the request it answered.
 */
export function answerResponseCreates (upstream: UpstreamWebSocket, nextId: () => string, text: string, onRequest?: (request: Record<string, unknown>) => void): void {
  upstream.ws.on('message', (data, isBinary) => {
    if (isBinary) return
    const request = JSON.parse(data.toString('utf8')) as Record<string, unknown>
    if (request.type !== 'response.create') return
    onRequest?.(request)
    for (const event of responseEvents(nextId(), text)) upstream.ws.send(event)
  })
}
