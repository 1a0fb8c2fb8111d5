import { Agent } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'

/**
 * The connection pool to the upstream. Every timeout is set here on purpose: undici's
 * 300 s defaults would cut long, slow streams.
 */
export function createUpstreamAgent (upstream: GatewayConfig['upstream']): Agent {
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
