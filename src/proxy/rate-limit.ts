import { errors, type GatewayError } from '../errors.js'

interface Window {
  count: number
  resetsAt: number
}

/** Past this many clients tracked, windows that have ended are swept before adding another. */
const SWEEP_ABOVE = 10_000

/**
 * Requests per minute per client (its key's digest, else its address), in fixed windows that
 * start at a client's first request: the same shape as @fastify/rate-limit's default, applied
 * to HTTP requests and WebSocket handshakes alike.
 */
export class RateLimiter {
  readonly #max: number
  readonly #windowMs: number
  readonly #now: () => number
  readonly #windows = new Map<string, Window>()

  constructor (maxPerWindow: number, windowMs = 60_000, now: () => number = Date.now) {
    this.#max = maxPerWindow
    this.#windowMs = windowMs
    this.#now = now
  }

  /** Counts one request for `client`; the 429 to answer with once it is over its allowance. */
  take (client: string): GatewayError | undefined {
    const now = this.#now()
    let window = this.#windows.get(client)
    if (window === undefined || window.resetsAt <= now) {
      if (window === undefined && this.#windows.size >= SWEEP_ABOVE) this.#sweep(now)
      window = { count: 0, resetsAt: now + this.#windowMs }
      // Re-added last: the map stays in order of resetsAt, so a sweep stops at the first live window.
      this.#windows.delete(client)
      this.#windows.set(client, window)
    }
    if (++window.count <= this.#max) return undefined
    return errors.rateLimited(Math.max(1, Math.ceil((window.resetsAt - now) / 1000)))
  }

  /** Drops ended windows, oldest first; a scan of every live one per new client was a flood's amplifier. */
  #sweep (now: number): void {
    for (const [client, window] of this.#windows) {
      if (window.resetsAt > now) return
      this.#windows.delete(client)
    }
  }
}
