import type { CallRecord } from './call-record.js'
import type { TokenUsage } from './session-usage.js'
import type { SessionUsage, UsagePage } from './session-usage.js'

/**
 * Where sessions outlive a connection: bindings from a lineage key (a response id, a
 * conversation id, a prompt cache key) to the session that owns it. Two implementations:
 * `MemorySessionStore` (one process) and `RedisSessionStore` (shared by replicas).
 */
export interface SessionStore {
  readonly kind: 'memory' | 'redis'
  /** The sessions bound to `keys`, in the same order; undefined where a key is unknown. */
  lookup (keys: readonly string[]): Promise<Array<string | undefined>>
  /**
   * Binds each key to `sessionId` for the configured idle TTL, or renews it when it is already
   * bound to `sessionId`. A key bound to another session is left alone: never taken over.
   */
  bind (keys: readonly string[], sessionId: string): void
  /**
   * Binds a response id to the session whose request the upstream answered with it, over a
   * binding a request made by naming the id before it was learned (a client continuing the
   * response faster than the gateway read its id): a response belongs to who produced it.
   */
  bindProduced (key: string, sessionId: string): void
  /**
   * Remembers the group of upstreams that produced the response (or created the conversation)
   * `key` names, with upstreams in several groups only, for as long as its binding lives: a
   * session that moved to another group after producing it still sends it where it exists. A
   * lost write costs only that.
   */
  bindOrigin (key: string, group: string): void
  /** The group that produced the response (or created the conversation) `key` names, if remembered. */
  originOf (key: string): string | undefined | Promise<string | undefined>
  /** The upstream the session is bound to (several upstreams only); undefined when none yet. A use: Redis renews its TTL. */
  upstreamOf (sessionId: string): string | undefined | Promise<string | undefined>
  /** The same, for looking only (the admin page): not a use, so it renews nothing. */
  peekUpstream (sessionId: string): string | undefined | Promise<string | undefined>
  /**
   * Binds the session to `upstream`: a `move` (the default) replaces an earlier binding; a first
   * binding (`move` false: none was known) leaves one another replica made in place.
   */
  bindUpstream (sessionId: string, upstream: string, move?: boolean): void
  /** Adds one finished request, and the tokens it used, to the session's totals. */
  recordUsage (sessionId: string, tokens: TokenUsage, at: number): void
  /**
   * Adds a model call's record, built from the session's previous one the upstream answered
   * (`judgesNextCall`; undefined for its first such), and keeps the session's last
   * `recordsPerSession`. Resolves to the record kept.
   */
  recordCall (sessionId: string, build: (previous: CallRecord | undefined) => CallRecord): Promise<CallRecord>
  /** The session's call records, newest first; undefined when the session is unknown. */
  calls (sessionId: string): Promise<CallRecord[] | undefined>
  /** The session's totals, or undefined when it is unknown. */
  usage (sessionId: string): Promise<SessionUsage | undefined>
  /** The most recently active sessions first. */
  recentUsage (limit: number, offset: number): Promise<UsagePage>
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
