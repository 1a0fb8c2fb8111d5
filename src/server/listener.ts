import type { Server, ServerOptions } from 'node:http'
import type { GatewayConfig } from '../config/load-config.js'
import { answerClientError, refuseConnect } from './client-errors.js'

/**
 * The node:http settings every listener of the gateway uses (the proxy's and the metrics
 * one): chosen from `server.*`, never Node's defaults.
 */
export function listenerOptions ({ server }: GatewayConfig): ServerOptions {
  return {
    maxHeaderSize: server.maxHeaderBytes,
    // Node enforces headersTimeout only on this interval's ticks (default 30 s): without it a
    // slowloris held its socket for up to 30 s past SERVER_HEADERS_TIMEOUT_MS.
    connectionsCheckingInterval: Math.min(30_000, Math.ceil(server.headersTimeoutMs / 2)),
    keepAliveTimeout: server.keepAliveTimeoutMs,
    requestTimeout: server.requestTimeoutMs,
    headersTimeout: server.headersTimeoutMs
  }
}

/** Requests Node's parser refuses, and CONNECT, get an OpenAI-style answer instead of Node's bare one. */
export function answerUnparsedRequests (server: Server): void {
  server.on('clientError', answerClientError)
  server.on('connect', refuseConnect)
}
