/** Token counts from a Responses `usage` object. */
export interface TokenUsage {
  input: number
  cached: number
  output: number
  reasoning: number
}

/** What `/gateway/sessions` shows for one session. */
export interface SessionUsage {
  id: string
  requests: number
  input_tokens: number
  cached_tokens: number
  output_tokens: number
  reasoning_tokens: number
  /** cached_tokens / input_tokens: the share of the prompt served from the provider's cache. */
  cache_hit_ratio: number
  /** ISO 8601 times. */
  first_seen: string
  last_seen: string
}

/** The running totals a store keeps per session. */
export interface UsageTotals {
  requests: number
  input: number
  cached: number
  output: number
  reasoning: number
  firstSeen: number
  lastSeen: number
}

export const NO_TOKENS: TokenUsage = { input: 0, cached: 0, output: 0, reasoning: 0 }

export function toSessionUsage (id: string, t: UsageTotals): SessionUsage {
  return {
    id,
    requests: t.requests,
    input_tokens: t.input,
    cached_tokens: t.cached,
    output_tokens: t.output,
    reasoning_tokens: t.reasoning,
    cache_hit_ratio: t.input === 0 ? 0 : Math.round((t.cached / t.input) * 10_000) / 10_000,
    first_seen: new Date(t.firstSeen).toISOString(),
    last_seen: new Date(t.lastSeen).toISOString()
  }
}

export interface UsagePage {
  sessions: SessionUsage[]
  /** Sessions known in all. */
  total: number
  /** The total may count sessions whose usage is gone but not yet found so (Redis: see its recentUsage). */
  approximate?: boolean
}
