import type { CacheOutcome, CallRecord, MissReason } from '../session/call-record.js'
import type { TokenUsage } from '../session/session-usage.js'

export interface CacheRules {
  /** Prompts below this many input tokens can't be cached: their outcome is `n/a`. */
  minTokens: number
  /** A gap longer than this since the session's previous call explains a miss as `idle`. */
  idleMs: number
}

/** What a call is judged by; the rest of its record is only reported. */
export interface CallFacts {
  time: number
  upstream: string
  fingerprint: string | null
  tokens: TokenUsage | undefined
}

/**
 * `hit` when at least half of the input came from the cache, `partial` below that, `miss` for
 * none of a prompt long enough to be cached, `n/a` for a shorter prompt or no usage at all.
 */
export function cacheOutcome (tokens: TokenUsage | undefined, { minTokens }: CacheRules): CacheOutcome {
  if (tokens === undefined || tokens.input === 0) return 'n/a'
  if (tokens.cached > 0) return tokens.cached * 2 >= tokens.input ? 'hit' : 'partial'
  return tokens.input >= minTokens ? 'miss' : 'n/a'
}

/**
 * Why a call missed, judged against the session's previous call (undefined: there was none).
 * A prefix counts as changed only when both fingerprints are known.
 */
export function missReason (call: CallFacts, previous: CallRecord | undefined, { idleMs }: CacheRules): MissReason {
  if (previous === undefined) return 'first_request'
  if (previous.upstream !== call.upstream) return 'rebound'
  if (call.fingerprint !== null && previous.fingerprint !== null && call.fingerprint !== previous.fingerprint) return 'prefix_changed'
  if (call.time - (previous.time + previous.durationMs) > idleMs) return 'idle'
  return 'unexplained'
}
