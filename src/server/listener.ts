import type { Server, ServerOptions } from 'node:http'
import type { AddressInfo } from 'node:net'
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

/** Listens; resolves to the bound address, e.g. `http://127.0.0.1:8080`. */
export async function listenOn (server: Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { address, port: bound } = server.address() as AddressInfo
  return `http://${address.includes(':') ? `[${address}]` : address}:${bound}`
}
