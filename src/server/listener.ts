import type { Server, ServerOptions } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { GatewayConfig } from '../config/load-config.js'
import { answerClientError, refuseConnect, refuseExpectation } from './client-errors.js'

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
    headersTimeout: server.headersTimeoutMs,
    // Node's answer to a request without Host is an empty 400; admission and the side routes
    // answer it with an OpenAI-style one (lacksHost).
    requireHostHeader: false
  }
}

/** Requests Node's parser refuses, CONNECT and unmet `Expect`s get an OpenAI-style answer instead of Node's bare one. */
export function answerUnparsedRequests (server: Server): void {
  server.on('clientError', answerClientError)
  server.on('connect', refuseConnect)
  server.on('checkExpectation', refuseExpectation)
}

/** The settings a listener's address comes from, as messages name them: `server.port (PORT)`. */
export interface ListenerSettings {
  host: string
  port: string
  /** What the listener serves, when it is not the gateway itself: `/metrics`. */
  serves?: string
}

/**
 * A listener could not bind. Unlike a ConfigError it may pass on its own (the previous process
 * still holds the port, DNS not up yet), so the CLI exits 1, which supervisors retry, not 2.
 */
export class ListenError extends Error {
  override name = 'ListenError'
  constructor (readonly code: string, message: string) {
    super(message)
  }
}

/** The usual failures: which of the two settings to name, and what the code means. */
const CAUSES: Record<string, { blame: 'host' | 'port', problem: string }> = {
  EADDRINUSE: { blame: 'port', problem: 'the port is in use' },
  EACCES: { blame: 'port', problem: 'no permission to listen on this port (below 1024 needs a privilege)' },
  EADDRNOTAVAIL: { blame: 'host', problem: 'the address is not one of this machine\'s' },
  ENOTFOUND: { blame: 'host', problem: 'the host name does not resolve' },
  EAI_AGAIN: { blame: 'host', problem: 'the host name could not be resolved for now' },
  EAI_FAIL: { blame: 'host', problem: 'the host name could not be resolved' }
}

/** Listens on `host:port`; resolves to the bound address (`http://127.0.0.1:8080`), or rejects with a ListenError naming the setting to look at. */
export async function listen (server: Server, host: string, port: number, settings: ListenerSettings): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port, settings))
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const { address, port: bound } = server.address() as AddressInfo
  return `http://${address.includes(':') ? `[${address}]` : address}:${bound}`
}

function listenError (err: NodeJS.ErrnoException, host: string, port: number, settings: ListenerSettings): ListenError {
  const code = err.code ?? 'ERROR'
  const cause = CAUSES[code]
  const named = cause === undefined ? `${settings.host} and ${settings.port}` : settings[cause.blame]
  const where = `${settings.serves === undefined ? '' : `for ${settings.serves} `}on ${host.includes(':') ? `[${host}]` : host}:${port}`
  return new ListenError(code, `cannot listen ${where}, ${named}: ${code}, ${cause?.problem ?? err.message}`)
}
