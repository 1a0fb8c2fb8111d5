import type { TokenUsage } from './session-usage.js'
import type { SessionStore, StoreHealth } from './session-store.js'
import { toSessionUsage, type SessionUsage, type UsagePage, type UsageTotals } from './session-usage.js'

interface Entry {
  sessionId: string
  expiresAt: number
}

export interface MemoryStoreOptions {
  /** Most bindings held; the least recently used go first. */
  maxEntries: number
  /** A binding not used for this long is forgotten. */
  idleTtlMs: number
  now?: () => number
}

/**
 * A bounded in-process store: LRU by count (a Map keeps insertion order; a hit moves the key
 * to the end) with an idle TTL checked on read, so nothing grows without bound.
 */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory'
  readonly #entries = new Map<string, Entry>()
  #bindsSinceSweep = 0
  /** Usage totals per session, in least-recently-active order, bounded like the bindings. */
  readonly #usage = new Map<string, UsageTotals>()
  readonly #maxEntries: number
  readonly #idleTtlMs: number
  readonly #now: () => number

  constructor ({ maxEntries, idleTtlMs, now = Date.now }: MemoryStoreOptions) {
    this.#maxEntries = maxEntries
    this.#idleTtlMs = idleTtlMs
    this.#now = now
  }

  async lookup (keys: readonly string[]): Promise<Array<string | undefined>> {
    return keys.map((key) => this.get(key))
  }

  /** Synchronous read, renewing the binding's idle TTL. */
  get (key: string): string | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    const now = this.#now()
    if (entry.expiresAt <= now) {
      this.#entries.delete(key)
      return undefined
    }
    this.#entries.delete(key)
    entry.expiresAt = now + this.#idleTtlMs
    this.#entries.set(key, entry)
    return entry.sessionId
  }

  bind (keys: readonly string[], sessionId: string): void {
    const now = this.#now()
    const expiresAt = now + this.#idleTtlMs
    for (const key of keys) {
      const bound = this.#entries.get(key)
      if (bound !== undefined && bound.expiresAt > now && bound.sessionId !== sessionId) continue
      this.#entries.delete(key)
      this.#entries.set(key, { sessionId, expiresAt })
    }
    // Sweeping on every bind would cost an iterator per request; every 256th is enough to
    // keep expired entries from piling up, and the count bound is checked every time.
    if (this.#entries.size > this.#maxEntries || ++this.#bindsSinceSweep >= 256) {
      this.#bindsSinceSweep = 0
      this.#evictOverflow()
    }
  }

  /** Forgets `key` if it is bound to `sessionId` (a binding the shared store refused). */
  unbind (key: string, sessionId: string): void {
    if (this.#entries.get(key)?.sessionId === sessionId) this.#entries.delete(key)
  }

  recordUsage (sessionId: string, tokens: TokenUsage, at: number): void {
    let totals = this.#usage.get(sessionId)
    if (totals === undefined) {
      totals = { requests: 0, input: 0, cached: 0, output: 0, reasoning: 0, firstSeen: at, lastSeen: at }
    } else {
      this.#usage.delete(sessionId)
    }
    totals.requests++
    totals.input += tokens.input
    totals.cached += tokens.cached
    totals.output += tokens.output
    totals.reasoning += tokens.reasoning
    totals.lastSeen = at
    this.#usage.set(sessionId, totals)
    if (this.#usage.size > this.#maxEntries) this.#usage.delete(this.#usage.keys().next().value as string)
  }

  async usage (sessionId: string): Promise<SessionUsage | undefined> {
    const totals = this.#usage.get(sessionId)
    return totals === undefined ? undefined : toSessionUsage(sessionId, totals)
  }

  async recentUsage (limit: number, offset: number): Promise<UsagePage> {
    const ids = [...this.#usage.keys()].reverse().slice(offset, offset + limit)
    return { sessions: ids.map((id) => toSessionUsage(id, this.#usage.get(id)!)), total: this.#usage.size }
  }

  health (): StoreHealth {
    return { kind: 'memory', state: 'ok' }
  }

  size (): number {
    return this.#entries.size
  }

  async close (): Promise<void> {
    this.#entries.clear()
    this.#usage.clear()
  }

  #evictOverflow (): void {
    // The Map is in least-recently-used order and every entry has the same idle TTL, so the
    // expired entries are exactly a prefix of it: drop that, then whatever exceeds the bound.
    const now = this.#now()
    let excess = this.#entries.size - this.#maxEntries
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now && excess <= 0) break
      this.#entries.delete(key)
      excess--
    }
  }
}
