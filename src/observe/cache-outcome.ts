import type { CacheOutcome, CallRecord, MissReason } from '../session/call-record.js'
import type { TokenUsage } from '../session/session-usage.js'
import { sharedInputBytes, type InputHistory } from './input-history.js'

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
  /** The request's `input` as the tap kept it; undefined when none was read (RequestPrefix.input). */
  input?: InputHistory | undefined
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
 * A prefix counts as changed only when both fingerprints are known; an input as changed only
 * when both calls' `input` was read (input-history.ts) and what the two prompts share is too
 * short to be cached (inputChangeExplains). A changed input is certain to miss however
 * soon it comes, so it is told before an idle gap, which only makes a miss likely.
 */
export function missReason (call: CallFacts, previous: CallRecord | undefined, rules: CacheRules): MissReason {
  if (previous === undefined) return 'first_request'
  if (previous.upstream !== call.upstream) return 'rebound'
  if (call.fingerprint !== null && previous.fingerprint !== null && call.fingerprint !== previous.fingerprint) return 'prefix_changed'
  if (inputChangeExplains(call, previous, rules)) return 'input_changed'
  if (call.time - (previous.time + previous.durationMs) > rules.idleMs) return 'idle'
  return 'unexplained'
}

/**
 * Bytes per token of English prose, the most a shared part is counted at: bytes that hold fewer
 * tokens (JSON's punctuation, a base64 image or file in `input`) would otherwise make the
 * call's average count a shared prose prefix as less than it is.
 */
const PROSE_BYTES_PER_TOKEN = 4
/**
 * Tokens per byte past which a call's prompt holds what its body does not show (a file or an
 * image by id or URL, a hosted tool's output): no text is this dense, so its bytes say nothing
 * of what two calls share.
 */
const MAX_TOKENS_PER_BYTE = 0.5
/** What two prompts may share, in tokens, for a changed input to explain a miss: this much of `minTokens`. */
const SHARED_SHARE = 0.75

/**
 * The bytes two prompts may share at most for a changed input to explain a miss: a call record
 * keeps what tells its input apart up to here (input-history.ts).
 */
export function judgedInputBytes ({ minTokens }: CacheRules): number {
  return minTokens * SHARED_SHARE * PROSE_BYTES_PER_TOKEN
}

/**
 * Whether the call's `input` did not go on from the previous call's and what the two prompts
 * still share (the fingerprinted fields, equal, and the bytes both inputs begin with) is under
 * three quarters of the shortest prefix cached. Its tokens are estimated from its bytes at
 * prose's rate, or at the call's own (its input tokens over the bytes of its fields and input)
 * when that is denser (code, scripts of more bytes a character); a call denser than any text
 * is not judged. The margin covers a shared part denser than that: near the line, the miss is
 * left to the next reasons rather than put on the input.
 */
function inputChangeExplains (call: CallFacts, previous: CallRecord, { minTokens }: CacheRules): boolean {
  const history = call.input
  if (history === undefined || call.tokens === undefined || call.fingerprint === null || call.fingerprint !== previous.fingerprint) return false
  const shared = sharedInputBytes(history, previous)
  if (shared === undefined) return false
  const ownRate = call.tokens.input / (history.prefixBytes + history.bytes)
  if (!(ownRate <= MAX_TOKENS_PER_BYTE)) return false
  return (history.prefixBytes + shared) * Math.max(ownRate, 1 / PROSE_BYTES_PER_TOKEN) < minTokens * SHARED_SHARE
}
