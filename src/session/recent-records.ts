/**
 * A session's last `capacity` call records, newest last. Once full it is a ring: a new record
 * takes the oldest's slot, so recording a call costs the same with 100 records kept or 10,000
 * (an array kept newest first moved every record on each call).
 */
export class RecentRecords<T> {
  /** Oldest first while not full; once full, the oldest is at `#oldest` and the rest follow it round. */
  #items: T[] = []
  #oldest = 0

  constructor (readonly capacity: number) {}

  get length (): number {
    return this.#items.length
  }

  newest (): T | undefined {
    const count = this.#items.length
    return count === 0 ? undefined : this.#items[(this.#oldest + count - 1) % count]
  }

  /** The newest record that passes `test`, looking from the newest back. */
  newestWhere (test: (item: T) => boolean): T | undefined {
    const items = this.#items
    const count = items.length
    for (let i = 0; i < count; i++) {
      const item = items[(this.#oldest + count - 1 - i) % count] as T
      if (test(item)) return item
    }
    return undefined
  }

  /** Keeps `item` as the newest; returns the oldest record it replaced when full. */
  add (item: T): T | undefined {
    const items = this.#items
    if (this.capacity < 1) return item // keeps none
    if (items.length < this.capacity) {
      items.push(item)
      return undefined
    }
    const replaced = items[this.#oldest]
    items[this.#oldest] = item
    this.#oldest = (this.#oldest + 1) % items.length
    return replaced
  }

  /** Drops the oldest record (a session over its share of the store); rare, so it may copy. */
  removeOldest (): T | undefined {
    if (this.#oldest !== 0) {
      this.#items = [...this.#items.slice(this.#oldest), ...this.#items.slice(0, this.#oldest)]
      this.#oldest = 0
    }
    return this.#items.shift()
  }

  /** A copy, newest first, as the API lists them. */
  newestFirst (): T[] {
    const items = this.#items
    const count = items.length
    const out = new Array<T>(count)
    for (let i = 0; i < count; i++) out[i] = items[(this.#oldest + count - 1 - i) % count] as T
    return out
  }
}
