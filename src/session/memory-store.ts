import type { TokenUsage } from './session-usage.js'
import type { SessionStore, StoreHealth } from './session-store.js'
import { toSessionUsage, type SessionUsage, type UsagePage } from './session-usage.js'
import { judgesNextCall, type CallRecord } from './call-record.js'
import { RecentRecords } from './recent-records.js'
import { callRecordBytes, SESSION_BYTES, sessionEntryBytes, type SessionEntry } from './session-entry.js'

export interface MemoryStoreOptions {
  /** Estimated bytes the whole store may hold (bindings, usage, per-session records). */
  maxBytes: number
  /** Most bindings held, and most sessions: a second bound beside the bytes. */
  maxEntries: number
  /** A session not used for this long is forgotten, with its bindings and usage. */
  idleTtlMs: number
  /** Call records kept per session (the newest). */
  recordsPerSession?: number
  now?: () => number
}

/**
 * A bounded in-process store, one entry per session holding its bindings and usage together.
 * Sessions are kept least recently used first (a Map keeps insertion order; a use moves the
 * session to the end); past the byte or count bound whole sessions go from the front, and a
 * session unused for the idle TTL is forgotten, so nothing grows without bound.
 *
 * A session may hold at most a quarter of the byte budget and of the count bound's bindings:
 * past that its own least recently used keys go first, so one endless chain can't evict
 * everyone else.
 */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory'
  /** Least recently used first. */
  readonly #sessions = new Map<string, SessionEntry>()
  readonly #byKey = new Map<string, SessionEntry>()
  /** The group that produced a response (or created a conversation) key (several groups only); lives and goes with its binding. */
  readonly #origins = new Map<string, string>()
  #bytes = 0
  #withUsage = 0
  #usesSinceSweep = 0
  readonly #maxBytes: number
  readonly #maxEntries: number
  /** A session's share of the count bound: its bindings past it go first (at least 1). */
  readonly #maxKeysPerSession: number
  readonly #idleTtlMs: number
  readonly #recordsPerSession: number
  readonly #now: () => number

  constructor ({ maxBytes, maxEntries, idleTtlMs, recordsPerSession = 100, now = Date.now }: MemoryStoreOptions) {
    this.#recordsPerSession = recordsPerSession
    this.#maxBytes = maxBytes
    this.#maxEntries = maxEntries
    this.#maxKeysPerSession = Math.max(1, Math.floor(maxEntries / 4))
    this.#idleTtlMs = idleTtlMs
    this.#now = now
  }

  async lookup (keys: readonly string[]): Promise<Array<string | undefined>> {
    return keys.map((key) => this.get(key))
  }

  /** Synchronous read; a hit is a use of the session, renewing its idle TTL. */
  get (key: string): string | undefined {
    const entry = this.#live(this.#byKey.get(key))
    if (entry === undefined) return undefined
    // Keys are kept in use order too, for trimming a session over its share.
    entry.keys.delete(key)
    entry.keys.add(key)
    this.#touch(entry)
    return entry.id
  }

  bind (keys: readonly string[], sessionId: string): void {
    if (keys.length === 0) return
    const entry = this.#entryFor(sessionId)
    for (const key of keys) {
      const owner = this.#live(this.#byKey.get(key))
      if (owner !== undefined && owner !== entry) continue // never taken over
      if (owner === entry) entry.keys.delete(key) // renewed: to the end of its use order
      else this.#addKey(entry, key)
      entry.keys.add(key)
    }
    // Every key was another session's: nothing to hold for this one.
    if (entry.keys.size === 0 && entry.usage === undefined && entry.records === undefined && entry.upstream === undefined) return this.#drop(entry)
    this.#touch(entry)
    this.#enforceBounds(entry)
  }

  bindProduced (key: string, sessionId: string): void {
    const owner = this.#live(this.#byKey.get(key))
    if (owner !== undefined && owner.id !== sessionId) this.#removeKey(owner, key)
    this.bind([key], sessionId)
  }

  /** Kept with the key's binding (made just before, by bindProduced): counted in its session's bytes, dropped with it. */
  bindOrigin (key: string, group: string): void {
    const entry = this.#live(this.#byKey.get(key))
    if (entry === undefined) return
    const known = this.#origins.has(key)
    this.#origins.set(key, group)
    if (known) return
    this.#resize(entry, SESSION_BYTES.perOrigin)
    this.#enforceBounds(entry)
  }

  /** Not a use: the lookup that found the key's session renewed it. */
  originOf (key: string): string | undefined {
    return this.#live(this.#byKey.get(key)) === undefined ? undefined : this.#origins.get(key)
  }

  /** Forgets `key` if it is bound to `sessionId` (a binding the shared store refused). */
  unbind (key: string, sessionId: string): void {
    const entry = this.#byKey.get(key)
    if (entry?.id === sessionId) this.#removeKey(entry, key)
  }

  /**
   * The session's upstream, synchronously (a routed request's await then costs no promise of
   * the store's own). Not a use of the session (the admin page reads it too): the request that
   * follows renews it when it records its usage.
   */
  upstreamOf (sessionId: string): string | undefined {
    return this.#live(this.#sessions.get(sessionId))?.upstream
  }

  /** One process: what upstreamOf says, which is no use either. */
  peekUpstream (sessionId: string): string | undefined {
    return this.upstreamOf(sessionId)
  }

  bindUpstream (sessionId: string, upstream: string): void {
    const entry = this.#entryFor(sessionId)
    entry.upstream = upstream
    this.#touch(entry)
    this.#enforceBounds(entry)
  }

  recordUsage (sessionId: string, tokens: TokenUsage, at: number): void {
    const entry = this.#entryFor(sessionId)
    let totals = entry.usage
    if (totals === undefined) {
      totals = { requests: 0, input: 0, cached: 0, output: 0, reasoning: 0, firstSeen: at, lastSeen: at }
      entry.usage = totals
      this.#withUsage++
      this.#resize(entry, SESSION_BYTES.usage)
    }
    totals.requests++
    totals.input += tokens.input
    totals.cached += tokens.cached
    totals.output += tokens.output
    totals.reasoning += tokens.reasoning
    totals.lastSeen = at
    this.#touch(entry)
    this.#enforceBounds(entry)
  }

  async recordCall (sessionId: string, build: (previous: CallRecord | undefined) => CallRecord): Promise<CallRecord> {
    const entry = this.#entryFor(sessionId)
    const records = entry.records ??= new RecentRecords(this.#recordsPerSession)
    const record = build(records.newestWhere(judgesNextCall))
    const replaced = records.add(record)
    this.#resize(entry, callRecordBytes(record) - (replaced === undefined ? 0 : callRecordBytes(replaced)))
    this.#touch(entry)
    this.#enforceBounds(entry)
    return record
  }

  async calls (sessionId: string): Promise<CallRecord[] | undefined> {
    const entry = this.#live(this.#sessions.get(sessionId))
    if (entry === undefined || (entry.usage === undefined && entry.records === undefined)) return undefined
    return entry.records === undefined ? [] : entry.records.newestFirst()
  }

  async usage (sessionId: string): Promise<SessionUsage | undefined> {
    const totals = this.#live(this.#sessions.get(sessionId))?.usage
    return totals === undefined ? undefined : toSessionUsage(sessionId, totals)
  }

  /** Expired sessions are dropped first, so the total counts only sessions that can be listed. */
  async recentUsage (limit: number, offset: number): Promise<UsagePage> {
    this.#dropExpired()
    const sessions: SessionUsage[] = []
    let skipped = 0
    for (const entry of [...this.#sessions.values()].reverse()) {
      if (sessions.length === limit) break
      if (entry.usage === undefined) continue
      if (skipped++ < offset) continue
      sessions.push(toSessionUsage(entry.id, entry.usage))
    }
    return { sessions, total: this.#withUsage }
  }

  health (): StoreHealth {
    return { kind: 'memory', state: 'ok' }
  }

  size (): number {
    return this.#byKey.size
  }

  /** The store's own estimate of the heap it holds, in bytes; never above `maxBytes` after a call returns. */
  bytes (): number {
    return this.#bytes
  }

  /** Sessions held. */
  sessionCount (): number {
    return this.#sessions.size
  }

  async close (): Promise<void> {
    this.#sessions.clear()
    this.#byKey.clear()
    this.#origins.clear()
    this.#bytes = 0
    this.#withUsage = 0
  }

  /** The live entry of `sessionId`, or a new one; an expired one is dropped first. */
  #entryFor (sessionId: string): SessionEntry {
    const existing = this.#live(this.#sessions.get(sessionId))
    if (existing !== undefined) return existing
    const entry: SessionEntry = { id: sessionId, keys: new Set(), usage: undefined, records: undefined, upstream: undefined, bytes: 0, expiresAt: this.#now() + this.#idleTtlMs }
    this.#sessions.set(sessionId, entry)
    this.#resize(entry, sessionEntryBytes(sessionId))
    return entry
  }

  /** `entry` if it has not expired; an expired one is dropped. */
  #live (entry: SessionEntry | undefined): SessionEntry | undefined {
    if (entry === undefined || entry.expiresAt > this.#now()) return entry
    this.#drop(entry)
    return undefined
  }

  /**
   * Expired sessions are exactly a prefix (one idle TTL for all, least recently used first), so
   * the sweep stops at the first live one; `keep` (the session in use) is never dropped.
   */
  #dropExpired (keep?: SessionEntry): void {
    const now = this.#now()
    for (const entry of this.#sessions.values()) {
      if (entry.expiresAt > now || entry === keep) return
      this.#drop(entry)
    }
  }

  #touch (entry: SessionEntry): void {
    entry.expiresAt = this.#now() + this.#idleTtlMs
    this.#sessions.delete(entry.id)
    this.#sessions.set(entry.id, entry)
  }

  #addKey (entry: SessionEntry, key: string): void {
    this.#byKey.set(key, entry)
    this.#resize(entry, SESSION_BYTES.perKey + 2 * key.length)
  }

  #removeKey (entry: SessionEntry, key: string): void {
    entry.keys.delete(key)
    this.#byKey.delete(key)
    this.#resize(entry, -(SESSION_BYTES.perKey + 2 * key.length))
    if (this.#origins.size > 0 && this.#origins.delete(key)) this.#resize(entry, -SESSION_BYTES.perOrigin)
  }

  /** Every change to what a session holds goes through here, so the total stays exact. */
  #resize (entry: SessionEntry, delta: number): void {
    entry.bytes += delta
    this.#bytes += delta
  }

  /** Drops a whole session: its bindings and its usage go together. */
  #drop (entry: SessionEntry): void {
    for (const key of entry.keys) {
      this.#byKey.delete(key)
      if (this.#origins.size > 0) this.#origins.delete(key)
    }
    if (entry.usage !== undefined) this.#withUsage--
    this.#sessions.delete(entry.id)
    this.#bytes -= entry.bytes
  }

  /**
   * Keeps the store within its bounds after `current` grew: `current` first gives up its oldest
   * keys beyond its share; then expired sessions go, then least recently used ones.
   */
  #enforceBounds (current: SessionEntry): void {
    // Over its share of the bytes a session gives up its oldest records (all but the last), then
    // its oldest keys; over its share of the bindings, its oldest keys.
    while (current.bytes > this.#maxBytes / 4 && (current.records?.length ?? 0) > 1) this.#removeOldestRecord(current)
    while ((current.bytes > this.#maxBytes / 4 && current.keys.size > 0) || current.keys.size > this.#maxKeysPerSession) this.#removeOldestKey(current)
    // Sweeping expired sessions on every use would cost an iterator per request; every 256th use is enough.
    if (++this.#usesSinceSweep >= 256) {
      this.#usesSinceSweep = 0
      this.#dropExpired(current)
    }
    if (!this.#overBounds()) return
    for (const entry of this.#sessions.values()) {
      if (!this.#overBounds()) return
      if (entry === current) break // the only session left: it is over the count bound alone
      this.#drop(entry)
    }
    while (this.#overBounds() && current.keys.size > 0) this.#removeOldestKey(current)
  }

  #overBounds (): boolean {
    return this.#bytes > this.#maxBytes || this.#byKey.size > this.#maxEntries || this.#sessions.size > this.#maxEntries
  }

  #removeOldestRecord (entry: SessionEntry): void {
    const record = entry.records?.removeOldest()
    if (record !== undefined) this.#resize(entry, -callRecordBytes(record))
  }

  #removeOldestKey (entry: SessionEntry): void {
    this.#removeKey(entry, entry.keys.values().next().value as string)
  }
}
