import type { CallRecord } from '../session/call-record.js'

/** One minute of model calls, as `/gateway/cache-history` shows it. */
export interface MinuteTotals {
  /** The minute's start, ISO 8601. */
  minute: string
  requests: number
  input_tokens: number
  cached_tokens: number
  hit: number
  partial: number
  miss: number
  'n/a': number
}

const MINUTE_MS = 60_000

/**
 * The overall cache hit ratio over time: per-minute totals of the calls this process
 * recorded, the last `minutes` of them (a day by default), in a small ring. Per process: each
 * replica shows the calls it served, and a restart starts it empty.
 */
export class CacheHistory {
  readonly #buckets: Array<{ at: number, totals: MinuteTotals }> = []

  constructor (private readonly minutes = 24 * 60) {}

  add (record: CallRecord): void {
    const at = Math.floor(record.time / MINUTE_MS) * MINUTE_MS
    const totals = this.#bucket(at)
    if (totals === undefined) return // older than the ring
    totals.requests++
    totals.input_tokens += record.input
    totals.cached_tokens += record.cached
    totals[record.cache]++
  }

  /** Minutes with calls, oldest first. */
  series (): MinuteTotals[] {
    return this.#buckets.map(({ totals }) => ({ ...totals }))
  }

  #bucket (at: number): MinuteTotals | undefined {
    // Calls end out of order by at most their duration: the bucket is at or near the end.
    for (let i = this.#buckets.length - 1; i >= 0; i--) {
      const bucket = this.#buckets[i]!
      if (bucket.at === at) return bucket.totals
      if (bucket.at < at) return this.#insert(i + 1, at)
    }
    return this.#insert(0, at)
  }

  #insert (index: number, at: number): MinuteTotals | undefined {
    const last = this.#buckets.at(-1)?.at ?? at
    if (at < Math.max(last, at) - (this.minutes - 1) * MINUTE_MS) return undefined
    const totals: MinuteTotals = { minute: new Date(at).toISOString(), requests: 0, input_tokens: 0, cached_tokens: 0, hit: 0, partial: 0, miss: 0, 'n/a': 0 }
    this.#buckets.splice(index, 0, { at, totals })
    const newest = this.#buckets.at(-1)!.at
    while (this.#buckets[0]!.at <= newest - this.minutes * MINUTE_MS) this.#buckets.shift()
    return totals
  }
}
