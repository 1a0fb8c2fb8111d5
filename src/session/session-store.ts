/**
 * Where sessions outlive a connection: bindings from a lineage key (a response id, a
 * conversation id, a prompt cache key) to the session that owns it. Two implementations:
 * `MemorySessionStore` (one process) and `RedisSessionStore` (shared by replicas).
 */
export interface SessionStore {
  readonly kind: 'memory' | 'redis'
  /** The sessions bound to `keys`, in the same order; undefined where a key is unknown. */
  lookup (keys: readonly string[]): Promise<Array<string | undefined>>
  /** Binds every key to `sessionId` (or renews the binding), for the configured idle TTL. */
  bind (keys: readonly string[], sessionId: string): void
  /** How the store is doing, for /readyz: `degraded` still serves, from local decisions. */
  health (): StoreHealth
  /** Keys held by this process (the whole store for memory, the local fallback for Redis). */
  size (): number
  close (): Promise<void>
}

export interface StoreHealth {
  kind: 'memory' | 'redis'
  state: 'ok' | 'degraded'
  detail?: string
}

/** Namespaced store keys, so one id space can't collide with another. */
export const lineageKey = {
  response: (id: string) => `resp:${id}`,
  conversation: (id: string) => `conv:${id}`,
  promptCacheKey: (key: string) => `pck:${key}`
}
