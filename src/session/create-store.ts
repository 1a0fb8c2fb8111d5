import type { GatewayConfig } from '../config/load-config.js'
import type { Logger } from '../observe/logger.js'
import { MemorySessionStore } from './memory-store.js'
import { usesRedis } from './redis-connection.js'
import { RedisSessionStore } from './redis-store.js'
import type { SessionStore } from './session-store.js'

/** Redis when a `redis.*` setting names one (URL, Sentinels or Cluster nodes), else the in-memory store. */
export function createSessionStore (config: GatewayConfig, logger: Logger): SessionStore {
  const { session, redis, cache } = config
  if (!usesRedis(redis)) return new MemorySessionStore({ maxBytes: session.maxBytes, maxEntries: session.maxEntries, idleTtlMs: session.idleTtlSeconds * 1000, recordsPerSession: cache.recordsPerSession })
  return new RedisSessionStore({
    target: redis,
    timeoutMs: redis.timeoutMs,
    idleTtlMs: session.idleTtlSeconds * 1000,
    keyPrefix: redis.keyPrefix,
    localMaxEntries: session.maxEntries,
    localMaxBytes: session.maxBytes,
    replayMaxEntries: redis.replayMaxEntries,
    recordsPerSession: cache.recordsPerSession,
    logger
  })
}
