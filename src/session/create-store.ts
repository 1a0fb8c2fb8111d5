import type { GatewayConfig } from '../config/load-config.js'
import type { Logger } from '../observe/logger.js'
import { MemorySessionStore } from './memory-store.js'
import { usesRedis } from '../config/redis-settings.js'
import type { SessionStore } from './session-store.js'

/**
 * Redis when a `redis.*` setting names one (URL, Sentinels or Cluster nodes), else the
 * in-memory store. The Redis client (ioredis, ~20 MB and ~100 ms to load) is imported only then.
 */
export async function createSessionStore (config: GatewayConfig, logger: Logger): Promise<SessionStore> {
  const { session, redis, cache } = config
  if (!usesRedis(redis)) return new MemorySessionStore({ maxBytes: session.maxBytes, maxEntries: session.maxEntries, idleTtlMs: session.idleTtlSeconds * 1000, recordsPerSession: cache.recordsPerSession })
  const { RedisSessionStore } = await import('./redis-store.js')
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
