/** A binding made while Redis was away, to be written to it when it returns. */
export interface PendingBinding {
  key: string
  sessionId: string
  /** When the binding's idle TTL runs out (epoch ms): it is replayed with what is left of it. */
  expiresAt: number
}

/**
 * Bindings waiting for Redis, oldest first, at most `maxEntries` of them: past that the oldest
 * is dropped (and counted), so an outage of any length costs bounded memory. A key bound again
 * keeps only its newest binding.
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

  add (key: string, sessionId: string, expiresAt: number): void {
    if (this.#maxEntries === 0) return
    this.#pending.delete(key)
    this.#pending.set(key, { key, sessionId, expiresAt })
    if (this.#pending.size > this.#maxEntries) {
      // A Map iterates in insertion order: the first key is the oldest binding.
      this.#pending.delete(this.#pending.keys().next().value as string)
      this.#dropped++
    }
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
