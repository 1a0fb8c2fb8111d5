/** Passive health of one upstream, with an optional active probe feeding the same record. */

export interface HealthPolicy {
  /** Failures in a row that eject the upstream. */
  failuresToEject: number
  /** First ejection's cooldown; doubled for each ejection in a row, up to `maxCooldownMs`. */
  cooldownMs: number
  maxCooldownMs: number
  /** Milliseconds on a clock that only runs forward; `performance.now()` unless a test sets one. */
  now?: () => number
}

export interface HealthReport {
  state: 'healthy' | 'ejected'
  consecutive_failures: number
  /** While ejected: milliseconds left of the cooldown. */
  ejected_for_ms?: number
}

/**
 * Counts failures in a row (connect error, timeout, reset before headers, 5xx, 429). At
 * `failuresToEject` the upstream is ejected for a cooldown; when it ends the upstream is tried
 * again, and one more failure ejects it at once for twice as long (so a dead upstream costs a
 * failed attempt per cooldown, not per request). A success clears both counts.
 */
export class UpstreamHealth {
  readonly #policy: HealthPolicy
  readonly #now: () => number
  #failures = 0
  /** Ejections in a row, for the doubling. */
  #ejections = 0
  #ejectedUntil = 0

  constructor (policy: HealthPolicy) {
    this.#policy = policy
    // Not Date.now: a wall clock set back (NTP, a resumed VM) would stretch every ejection by as much.
    this.#now = policy.now ?? (() => performance.now())
  }

  isHealthy (): boolean {
    return this.#ejectedUntil <= this.#now()
  }

  recordSuccess (): void {
    this.#failures = 0
    this.#ejections = 0
    this.#ejectedUntil = 0
  }

  /**
   * Counts a failure; `retryAfterMs` (a 429's `retry-after`) is the least cooldown if it ejects.
   * Returns the cooldown when this failure ejected the upstream, else 0.
   */
  recordFailure (retryAfterMs = 0): number {
    if (!this.isHealthy()) return 0 // in flight before the ejection: already counted
    this.#failures++
    // On probation after a cooldown, one failure is enough.
    if (this.#failures < this.#policy.failuresToEject && this.#ejections === 0) return 0
    const { cooldownMs, maxCooldownMs } = this.#policy
    const cooldown = Math.max(retryAfterMs, Math.min(maxCooldownMs, cooldownMs * 2 ** this.#ejections))
    this.#ejections++
    this.#ejectedUntil = this.#now() + cooldown
    return cooldown
  }

  report (): HealthReport {
    const left = this.#ejectedUntil - this.#now()
    return left > 0
      ? { state: 'ejected', consecutive_failures: this.#failures, ejected_for_ms: left }
      : { state: 'healthy', consecutive_failures: this.#failures }
  }
}

/** The longest `retry-after` honoured: an upstream (or its clock) cannot eject itself for longer. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000

/** `retry-after` as milliseconds, at most a day: delta-seconds or an HTTP date; 0 when absent or unreadable. */
export function retryAfterMs (rawHeaders: Buffer[], now = Date.now()): number {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== 11 || rawHeaders[i]!.toString('latin1').toLowerCase() !== 'retry-after') continue
    return retryAfterValueMs(rawHeaders[i + 1]!.toString('latin1'), now)
  }
  return 0
}

/** One `retry-after` value as milliseconds, at most a day; 0 when absent or unreadable. */
export function retryAfterValueMs (value: string | undefined, now = Date.now()): number {
  if (value === undefined) return 0
  const text = value.trim()
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS)
  const date = Date.parse(text)
  return Number.isNaN(date) ? 0 : Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS)
}
