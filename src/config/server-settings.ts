/** The checks that span more than one `server.*` setting, each valid alone; Node would refuse them at start with its own option names. */
import type { GatewayConfig } from './load-config.js'
import { ConfigError } from './settings.js'

/** YAML path → the key that set it (an env var or the YAML path itself); absent for a default. */
export type SetBy = ReadonlyMap<string, string>

const HEADERS = ['server.headers_timeout_ms', 'SERVER_HEADERS_TIMEOUT_MS'] as const
const REQUEST = ['server.request_timeout_ms', 'SERVER_REQUEST_TIMEOUT_MS'] as const

/**
 * The request headers are part of the request: Node refuses a headers timeout longer than the
 * request timeout (unless that is 0, none). Blamed on the key that was set, the headers' first.
 */
export function checkServerSettings (server: GatewayConfig['server'], setBy: SetBy): void {
  const { headersTimeoutMs, requestTimeoutMs } = server
  if (requestTimeoutMs === 0 || headersTimeoutMs <= requestTimeoutMs) return
  const key = setBy.get(HEADERS[0]) ?? setBy.get(REQUEST[0]) ?? HEADERS[0]
  throw new ConfigError(key, `${named(HEADERS, headersTimeoutMs, setBy)} is longer than ${named(REQUEST, requestTimeoutMs, setBy)}, ` +
    `which includes the headers: lower ${HEADERS[0]} (${HEADERS[1]}), or raise ${REQUEST[0]} (${REQUEST[1]}) to at least ${headersTimeoutMs}, or set it to 0 (none)`)
}

function named ([path, env]: readonly [string, string], value: number, setBy: SetBy): string {
  return `${path} (${env}) ${value}${setBy.has(path) ? '' : ' (its default)'}`
}
