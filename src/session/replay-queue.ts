/**
 * A binding made while Redis was away, to be written to it when it returns: a lineage key's
 * session (`resp:…`, `conv:…`, `pck:…`), a session's upstream (`upstream:<session>`), or the
 * group that produced a response or conversation (`origin:resp:…`, `origin:conv:…`). All share
 * one queue and one bound; a key written again keeps only its newest value.
 */
export type PendingBinding = PendingLineage | PendingUpstream | PendingOrigin

interface Pending {
  /** The store key, without the configured prefix. */
  key: string
  /** When the binding's idle TTL runs out (epoch ms): it is replayed with what is left of it. */
  expiresAt: number
}

/** Replayed unless Redis holds the key already: a key is never taken from another session. */
export interface PendingLineage extends Pending {
  kind: 'lineage'
  sessionId: string
  /** A response id its session produced: written over a binding made by naming it (bindProduced). */
  produced?: boolean
}

/**
 * A move is replayed unless Redis's binding of the session was written or read since: the later
 * one wins. A first binding (made when none was known) only where Redis holds none.
 */
export interface PendingUpstream extends Pending {
  kind: 'upstream'
  /** The session bound: a first binding kept out by Redis's gives the local copy Redis's upstream. */
  sessionId: string
  upstream: string
  move: boolean
}

/** Written as it is: where a response or conversation was made is a fact, not a claim on a key. */
export interface PendingOrigin extends Pending {
  kind: 'origin'
  group: string
}

/**
 * Bindings waiting for Redis, oldest first, at most `maxEntries` of them: past that the oldest
 * is dropped (and counted), so an outage of any length costs bounded memory. A key bound again
 * keeps only its newest binding (for a session's upstream: the last move wins).
 */
export class ReplayQueue {
  readonly #pending = new Map<string, PendingBinding>()
  readonly #maxEntries: number
  #dropped = 0

  constructor (maxEntries: number) {
    this.#maxEntries = maxEntries
  }

  get size (): number {
    return this.#pending.size
  }

  add (binding: PendingBinding): void {
    if (this.#maxEntries === 0) return
    this.#pending.delete(binding.key)
    this.#pending.set(binding.key, binding)
    if (this.#pending.size > this.#maxEntries) {
      // A Map iterates in insertion order: the first key is the oldest binding.
      this.#pending.delete(this.#pending.keys().next().value as string)
      this.#dropped++
    }
  }

  /** `key`'s binding waiting for Redis, if any. */
  get (key: string): PendingBinding | undefined {
    return this.#pending.get(key)
  }

  /** Forgets a key's pending binding: a newer one went to Redis directly. */
  forget (key: string): void {
    this.#pending.delete(key)
  }

  /** The oldest `count` bindings, left in the queue until `done` says they were written. */
  oldest (count: number): PendingBinding[] {
    const batch: PendingBinding[] = []
    for (const entry of this.#pending.values()) {
      if (batch.length === count) break
      batch.push(entry)
    }
    return batch
  }

  /** Removes written bindings, unless the key was bound again meanwhile (that one still waits). */
  done (batch: readonly PendingBinding[]): void {
    for (const entry of batch) {
      if (this.#pending.get(entry.key) === entry) this.#pending.delete(entry.key)
    }
  }

  /** How many were dropped over the bound since the last call. */
  takeDropped (): number {
    const dropped = this.#dropped
    this.#dropped = 0
    return dropped
  }
}
