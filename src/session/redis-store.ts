import { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.js'
import { MemorySessionStore } from './memory-store.js'
import type { SessionStore, StoreHealth } from './session-store.js'

export interface RedisStoreOptions {
  url: string
  /** Longest a request waits for Redis before deciding from local knowledge. */
  timeoutMs: number
  idleTtlMs: number
  keyPrefix: string
  /** Bounds the local copy kept for when Redis is away. */
  localMaxEntries: number
  logger: Logger
}

/**
 * Bindings shared by every replica through Redis, each key with a TTL. Every binding is also
 * kept locally, so when Redis is slow or down requests go on within `timeoutMs`, decided from
 * what this process knows; the outage is logged once and the client reconnects by itself.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis'
  readonly #redis: Redis
  readonly #local: MemorySessionStore
  readonly #ttlSeconds: number
  readonly #prefix: string
  readonly #logger: Logger
  #degradedBy: string | undefined = 'connecting'

  constructor (options: RedisStoreOptions) {
    this.#local = new MemorySessionStore({ maxEntries: options.localMaxEntries, idleTtlMs: options.idleTtlMs })
    this.#ttlSeconds = Math.max(1, Math.ceil(options.idleTtlMs / 1000))
    this.#prefix = options.keyPrefix
    this.#logger = options.logger
    this.#redis = new Redis(options.url, {
      // Fail commands at once while disconnected instead of queueing them behind a reconnect.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
      lazyConnect: false
    })
    this.#redis.on('ready', () => this.#recovered())
    this.#redis.on('error', (err: Error & { code?: string }) => this.#degraded(err.code ?? err.message))
    this.#redis.on('end', () => this.#degraded('connection ended'))
  }

  async lookup (keys: readonly string[]): Promise<Array<string | undefined>> {
    const local = keys.map((key) => this.#local.get(key))
    if (keys.length === 0 || this.#redis.status !== 'ready') return local
    try {
      const shared = await this.#redis.mget(keys.map((key) => this.#prefix + key))
      this.#recovered()
      return keys.map((_, i) => shared[i] ?? local[i])
    } catch (err) {
      this.#degraded((err as Error).message)
      return local
    }
  }

  bind (keys: readonly string[], sessionId: string): void {
    this.#local.bind(keys, sessionId)
    if (keys.length === 0 || this.#redis.status !== 'ready') return
    const pipeline = this.#redis.pipeline()
    for (const key of keys) pipeline.set(this.#prefix + key, sessionId, 'EX', this.#ttlSeconds)
    pipeline.exec().catch((err: Error) => this.#degraded(err.message))
  }

  health (): StoreHealth {
    return this.#degradedBy === undefined
      ? { kind: 'redis', state: 'ok' }
      : { kind: 'redis', state: 'degraded', detail: `redis unavailable (${this.#degradedBy}); sessions decided locally` }
  }

  size (): number {
    return this.#local.size()
  }

  async close (): Promise<void> {
    this.#redis.disconnect()
    await this.#local.close()
  }

  #degraded (reason: string): void {
    if (this.#degradedBy !== undefined && this.#degradedBy !== 'connecting') return
    const first = this.#degradedBy === undefined
    this.#degradedBy = reason
    // Logged once per outage, not once per failed command or reconnect attempt.
    if (first) this.#logger.warn({ reason }, 'session store: redis unavailable, deciding sessions locally until it returns')
    else this.#logger.warn({ reason }, 'session store: redis not reachable at start, deciding sessions locally until it is')
  }

  #recovered (): void {
    if (this.#degradedBy === undefined) return
    const wasConnecting = this.#degradedBy === 'connecting'
    this.#degradedBy = undefined
    if (!wasConnecting) this.#logger.info('session store: redis is back, sessions shared again')
  }
}
