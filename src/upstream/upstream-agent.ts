import { createRequire } from 'node:module'
import type { Agent as UndiciAgent } from 'undici'

const requireUndici = createRequire(import.meta.url)
// The Agent alone: undici's index also loads fetch, WebSocket, caches and mocks, which the
// gateway never uses (~8 MB of resident memory and ~40 ms of start-up).
const Agent = requireUndici('undici/lib/dispatcher/agent.js') as typeof UndiciAgent
// What undici's index does besides: give every dispatcher request(), stream()… (the health
// probes call request()). Without it they are undefined, and every probe failed.
Object.assign((requireUndici('undici/lib/dispatcher/dispatcher.js') as { prototype: object }).prototype, requireUndici('undici/lib/api/index.js'))
import type { GatewayConfig } from '../config/load-config.js'

/**
 * The connection pool to the upstream. Every timeout is set here on purpose: undici's
 * 300 s defaults would cut long, slow streams.
 */
export function createUpstreamAgent (upstream: GatewayConfig['upstream']): UndiciAgent {
  return new Agent({
    connections: upstream.connections === 0 ? null : upstream.connections,
    // One request per connection at a time: a POST is never queued behind another on a socket
    // that may die, so it is never replayed.
    pipelining: 1,
    headersTimeout: upstream.headersTimeoutMs,
    bodyTimeout: upstream.idleTimeoutMs,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connect: {
      timeout: upstream.connectTimeoutMs,
      rejectUnauthorized: true
    }
  })
}

/**
 * The health probes' own connections. A probe asks whether the upstream answers, so it must not
 * wait behind the requests that fill `upstream.connections`: undici cuts a request that waits
 * for a connection only once it has one, so a probe queued there outlived its deadline unheard,
 * and then counted as a failure. One probe at a time per upstream keeps these few.
 */
export function createProbeAgent (upstream: GatewayConfig['upstream']): UndiciAgent {
  return new Agent({
    pipelining: 1,
    connect: {
      timeout: upstream.connectTimeoutMs,
      rejectUnauthorized: true
    }
  })
}
