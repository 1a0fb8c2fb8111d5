/**
 * The upstream pool settings both Node anchors use, the same as session-gateway's defaults:
 * unlimited connections, one request per connection at a time, and no timeout that would cut
 * a long stream. (reply-from's own default pool is 128 connections, which would queue the
 * held-streams scenario.)
 */
export const POOL_OPTIONS = Object.freeze({
  connections: null,
  pipelining: 1,
  keepAliveTimeout: 4_000,
  keepAliveMaxTimeout: 60_000,
  headersTimeout: 600_000,
  bodyTimeout: 600_000
})
