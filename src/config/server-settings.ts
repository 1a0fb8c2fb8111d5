/**
 * The checks that span the listener's settings (`server.*`, and `metrics.port` beside
 * `server.port`), each valid alone: Node would refuse them at start, in its own words.
 */
import type { GatewayConfig } from './load-config.js'
import { ConfigError, refuseLonger, type SetBy } from './settings.js'

const HEADERS = ['server.headers_timeout_ms', 'SERVER_HEADERS_TIMEOUT_MS'] as const
const REQUEST = ['server.request_timeout_ms', 'SERVER_REQUEST_TIMEOUT_MS'] as const

export function checkServerSettings ({ server, metrics }: GatewayConfig, setBy: SetBy): void {
  checkTimeouts(server, setBy)
  // Both listen on server.host: the second could never bind (0 is a free port each).
  if (metrics.port === server.port && server.port !== 0) {
    throw new ConfigError(setBy.get('metrics.port') ?? 'metrics.port', `metrics.port (METRICS_PORT) ${metrics.port} is server.port (PORT) too: /metrics needs a port of its own, or -1 to be served on the main one`)
  }
}

/**
 * The request headers are part of the request: Node refuses a headers timeout longer than the
 * request timeout (unless that is 0, none). Blamed on the key that was set, the headers' first.
 */
function checkTimeouts (server: GatewayConfig['server'], setBy: SetBy): void {
  const { headersTimeoutMs, requestTimeoutMs } = server
  if (requestTimeoutMs === 0 || headersTimeoutMs <= requestTimeoutMs) return
  refuseLonger(HEADERS, headersTimeoutMs, REQUEST, requestTimeoutMs, setBy, 'which includes the headers', ', or set it to 0 (none)')
}

