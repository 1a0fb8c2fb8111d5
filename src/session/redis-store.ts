import { Redis } from 'ioredis'
import type { Logger } from '../observe/logger.js'
import { MemorySessionStore } from './memory-store.js'
import type { TokenUsage } from './session-usage.js'
import type { SessionStore, StoreHealth } from './session-store.js'
import { toSessionUsage, type SessionUsage, type UsagePage, type UsageTotals } from './session-usage.js'

export interface RedisStoreOptions {
  url: string
  /** Longest a request waits for Redis before deciding from local knowledge. */
  timeoutMs: number
  idleTtlMs: number
  keyPrefix: string
  /** Bounds the local copy kept for when Redis is away. */
  localMaxEntries: number
  /** Bounds the local copy's estimated bytes, like the in-memory store's. */
  localMaxBytes: number
  logger: Logger
}

/**
 * Binds KEYS[1] to ARGV[1] for ARGV[2] seconds unless another session owns it, atomically;
 * renews it when ARGV[1] already does. Returns 1 when the key is ARGV[1]'s, 0 when not. One key
 * a script, so it runs unchanged on Redis Cluster.
 */
const BIND_UNLESS_OWNED = `
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0`

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
  readonly #maxUsageSessions: number
  #degradedBy: string | undefined = 'connecting'
  #closed = false

  constructor (options: RedisStoreOptions) {
    this.#local = new MemorySessionStore({ maxBytes: options.localMaxBytes, maxEntries: options.localMaxEntries, idleTtlMs: options.idleTtlMs })
    this.#ttlSeconds = Math.max(1, Math.ceil(options.idleTtlMs / 1000))
    this.#prefix = options.keyPrefix
    this.#logger = options.logger
    this.#maxUsageSessions = options.localMaxEntries
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
    for (const key of keys) pipeline.eval(BIND_UNLESS_OWNED, 1, this.#prefix + key, sessionId, this.#ttlSeconds)
    pipeline.exec()
      .then((results) => {
        // Another replica's session owns the key: the local copy must not claim it either.
        results?.forEach(([err, bound], i) => { if (err === null && bound === 0) this.#local.unbind(keys[i]!, sessionId) })
      })
      .catch((err: Error) => this.#degraded(err.message))
  }

  /**
   * Totals are a Redis hash per session (`usage:<id>`, with the idle TTL) and a sorted set of
   * session ids by last activity (`usage-recent`), trimmed to `localMaxEntries`. While Redis is
   * away, usage is counted locally only.
   */
  recordUsage (sessionId: string, tokens: TokenUsage, at: number): void {
    this.#local.recordUsage(sessionId, tokens, at)
    if (this.#redis.status !== 'ready') return
    const key = this.#prefix + 'usage:' + sessionId
    const recent = this.#prefix + 'usage-recent'
    this.#redis.pipeline()
      .hincrby(key, 'requests', 1)
      .hincrby(key, 'input', tokens.input)
      .hincrby(key, 'cached', tokens.cached)
      .hincrby(key, 'output', tokens.output)
      .hincrby(key, 'reasoning', tokens.reasoning)
      .hsetnx(key, 'firstSeen', at)
      .hset(key, 'lastSeen', at)
      .expire(key, this.#ttlSeconds)
      .zadd(recent, at, sessionId)
      .zremrangebyrank(recent, 0, -(this.#maxUsageSessions + 1))
      .exec()
      .catch((err: Error) => this.#degraded(err.message))
  }

  async usage (sessionId: string): Promise<SessionUsage | undefined> {
    if (this.#redis.status !== 'ready') return await this.#local.usage(sessionId)
    try {
      const totals = parseTotals(await this.#redis.hgetall(this.#prefix + 'usage:' + sessionId))
      return totals === undefined ? undefined : toSessionUsage(sessionId, totals)
    } catch (err) {
      this.#degraded((err as Error).message)
      return await this.#local.usage(sessionId)
    }
  }

  async recentUsage (limit: number, offset: number): Promise<UsagePage> {
    if (this.#redis.status !== 'ready') return await this.#local.recentUsage(limit, offset)
    try {
      const recent = this.#prefix + 'usage-recent'
      const [ids, total] = await Promise.all([
        this.#redis.zrevrange(recent, offset, offset + limit - 1),
        this.#redis.zcard(recent)
      ])
      const pipeline = this.#redis.pipeline()
      for (const id of ids) pipeline.hgetall(this.#prefix + 'usage:' + id)
      const rows = (await pipeline.exec()) ?? []
      const sessions: SessionUsage[] = []
      ids.forEach((id, i) => {
        const totals = parseTotals(rows[i]?.[1] as Record<string, string> | undefined)
        if (totals !== undefined) sessions.push(toSessionUsage(id, totals))
      })
      return { sessions, total }
    } catch (err) {
      this.#degraded((err as Error).message)
      return await this.#local.recentUsage(limit, offset)
    }
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
    this.#closed = true
    this.#redis.disconnect()
    await this.#local.close()
  }

  #degraded (reason: string): void {
    // Our own disconnect ends the connection too ('end'): that is a shutdown, not an outage.
    if (this.#closed) return
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

function parseTotals (hash: Record<string, string> | undefined): UsageTotals | undefined {
  if (hash === undefined || hash.requests === undefined) return undefined
  const n = (value: string | undefined): number => Number(value ?? 0) || 0
  return {
    requests: n(hash.requests),
    input: n(hash.input),
    cached: n(hash.cached),
    output: n(hash.output),
    reasoning: n(hash.reasoning),
    firstSeen: n(hash.firstSeen),
    lastSeen: n(hash.lastSeen)
  }
}
