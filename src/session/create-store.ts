import type { GatewayConfig } from '../config/load-config.js'
import type { Logger } from '../observe/logger.js'
import { MemorySessionStore } from './memory-store.js'
import { RedisSessionStore } from './redis-store.js'
import type { SessionStore } from './session-store.js'

/** Redis when `redis.url` is set, else the in-memory store. */
export function createSessionStore (config: GatewayConfig, logger: Logger): SessionStore {
  const { session, redis } = config
  if (redis.url === '') return new MemorySessionStore({ maxBytes: session.maxBytes, maxEntries: session.maxEntries, idleTtlMs: session.idleTtlSeconds * 1000 })
  return new RedisSessionStore({
    url: redis.url,
    timeoutMs: redis.timeoutMs,
    idleTtlMs: session.idleTtlSeconds * 1000,
    keyPrefix: redis.keyPrefix,
    localMaxEntries: session.maxEntries,
    localMaxBytes: session.maxBytes,
    logger
  })
}
