/**
 * The `ws` package (a transitive dependency: @fastify/http-proxy, openai), typed for what the
 * tests use. Loaded through require so the tests need no @types/ws.
 */
import type { EventEmitter } from 'node:events'
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import { createRequire } from 'node:module'
import type { Duplex } from 'node:stream'

export interface WsSocket extends EventEmitter {
  /** The extensions the handshake agreed, e.g. `permessage-deflate` ('' for none). */
  readonly extensions: string
  readonly readyState: number
  send (data: string | Buffer, options?: { binary?: boolean, compress?: boolean, fin?: boolean }, cb?: (err?: Error) => void): void
  close (code?: number, reason?: string): void
  /** Destroys the connection without a closing handshake. */
  terminate (): void
  ping (data?: Buffer): void
  on (event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
  on (event: 'close', listener: (code: number, reason: Buffer) => void): this
  on (event: 'open' | 'ping' | 'pong', listener: (data: Buffer) => void): this
  on (event: 'error', listener: (err: Error) => void): this
  on (event: 'upgrade' | 'unexpected-response', listener: (...args: any[]) => void): this
  on (event: string, listener: (...args: any[]) => void): this
}

export interface WsClientOptions {
  headers?: OutgoingHttpHeaders
  perMessageDeflate?: boolean | Record<string, unknown>
}

export interface WsServerOptions {
  noServer: true
  perMessageDeflate?: boolean | Record<string, unknown>
}

export interface WsServer {
  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer, done: (ws: WsSocket, req: IncomingMessage) => void): void
  close (): void
}

interface WsModule {
  WebSocket: new (url: string, options?: WsClientOptions) => WsSocket
  WebSocketServer: new (options: WsServerOptions) => WsServer
}

const ws = createRequire(import.meta.url)('ws') as WsModule

export const WebSocket = ws.WebSocket
export const WebSocketServer = ws.WebSocketServer
