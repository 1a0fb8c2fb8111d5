/** How much of a call's prompt the provider's cache served. */
export type CacheOutcome = 'hit' | 'partial' | 'miss' | 'n/a'

/** Why a call missed the cache: the first of these that applies. */
export type MissReason = 'first_request' | 'rebound' | 'prefix_changed' | 'input_changed' | 'idle' | 'unexplained'

/**
 * One model call (an HTTP request to /v1/responses or /v1/chat/completions, or one response on
 * a WebSocket) as the session store keeps it: the last N per session, newest first. Besides
 * what `/gateway/sessions/{id}/requests` shows, it carries the facts the next call's miss
 * reason is judged by (its time, upstream, prefix fingerprint and digests of its `input`'s
 * first bytes), so replicas sharing Redis judge alike.
 */
export interface CallRecord {
  /** Start, in epoch milliseconds (fractional: the next call's idle gap is never 0 by rounding). */
  time: number
  model: string | null
  upstream: string
  status: number
  /** Null when no response headers came (or on a WebSocket, where responses have no headers). */
  ttfbMs: number | null
  durationMs: number
  input: number
  cached: number
  output: number
  reasoning: number
  cache: CacheOutcome
  missReason: MissReason | null
  /** The request's `model`/`instructions`/`tools` fingerprint; null when it could not be read. */
  fingerprint: string | null
  /**
   * The code of the error a 2xx stream carried before any response began (`rate_limit_exceeded`):
   * the upstream refused the call inside its answer. Absent for every other call.
   */
  error?: string | undefined
  /**
   * How many of the request's first `input` bytes `inputCheckpoints` cover (input-history.ts);
   * absent when it was not read, or when its fingerprinted fields alone are more than a changed
   * input can be judged by.
   */
  inputBytes?: number | undefined
  /**
   * Digests of those bytes' first 64, 128, 256, … and of them all: for the next call to tell
   * whether its input goes on from this one, and if not, how much of it the two share at most.
   */
  inputCheckpoints?: readonly number[] | undefined
}

/**
 * Whether the next call's miss is judged against this one: only a call the upstream answered
 * can have put its prefix in a cache. A refused one (a 429 that SDKs retry, a 400, a 200 stream
 * whose first event was an `error`) or one that got no answer did not. A WebSocket response has
 * no status of its own (it is recorded with the handshake's 101): one that ended without usage,
 * in an `error` event as a rate-limited one does, was refused.
 */
export function judgesNextCall ({ status, input, error }: CallRecord): boolean {
  return status === 101 ? input > 0 : status >= 200 && status < 300 && typeof error !== 'string'
}

/** A call as `/gateway/sessions/{id}/requests` shows it. */
export interface CallView {
  time: string
  model: string | null
  upstream: string
  status: number
  ttfb_ms: number | null
  duration_ms: number
  input_tokens: number
  cached_tokens: number
  output_tokens: number
  reasoning_tokens: number
  cache: CacheOutcome
  miss_reason: MissReason | null
  /** The error code a 2xx stream carried instead of a response; null for none. */
  error: string | null
}

export function toCallView (r: CallRecord): CallView {
  return {
    time: new Date(r.time).toISOString(),
    model: r.model,
    upstream: r.upstream,
    status: r.status,
    ttfb_ms: r.ttfbMs === null ? null : round1(r.ttfbMs),
    duration_ms: round1(r.durationMs),
    input_tokens: r.input,
    cached_tokens: r.cached,
    output_tokens: r.output,
    reasoning_tokens: r.reasoning,
    cache: r.cache,
    miss_reason: r.missReason,
    error: typeof r.error === 'string' ? r.error : null
  }
}

function round1 (ms: number): number {
  return Math.round(ms * 10) / 10
}

/** A stored record read back (Redis holds JSON): undefined unless it has the fields judged by. */
export function parseCallRecord (text: string | null | undefined): CallRecord | undefined {
  if (text === null || text === undefined) return undefined
  try {
    const value = JSON.parse(text) as Partial<CallRecord> | null
    return typeof value?.time === 'number' && typeof value.upstream === 'string' ? value as CallRecord : undefined
  } catch {
    return undefined
  }
}
