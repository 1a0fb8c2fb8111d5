import type { Logger } from './logger.js'
import type { GatewayMetrics } from './metrics.js'
import type { CacheHistory } from './cache-history.js'
import { cacheOutcome, judgedInputBytes, missReason, type CacheRules, type CallFacts } from './cache-outcome.js'
import { checkpointsOf } from './input-history.js'
import type { CallRecord } from '../session/call-record.js'
import type { SessionStore } from '../session/session-store.js'

/** A finished model call: what it is judged by, and what its record reports besides. */
export interface FinishedCall extends CallFacts {
  model: string | null
  status: number
  ttfbMs: number | null
  durationMs: number
  /** The error a 2xx stream carried instead of a response (its code); undefined for none. */
  error?: string | undefined
}

export interface CallRecorderOptions {
  store: SessionStore
  metrics: GatewayMetrics
  history: CacheHistory
  rules: CacheRules
  /** Whether request bodies are tapped for their prefix fingerprint (CACHE_ANALYSIS). */
  analysis: boolean
  logger: Logger
}

/**
 * Turns each finished model call into its record, once, at its end: the cache outcome from
 * its usage, the miss reason from the session's previous call (as the store has it), then the
 * store, the metrics and the per-minute history.
 */
export class CallRecorder {
  constructor (private readonly options: CallRecorderOptions) {}

  get analysis (): boolean {
    return this.options.analysis
  }

  record (sessionId: string, call: FinishedCall): void {
    const { store, rules, metrics, history, logger } = this.options
    const cache = cacheOutcome(call.tokens, rules)
    const kept = call.input === undefined ? undefined : checkpointsOf(call.input, judgedInputBytes(rules))
    const build = (previous: CallRecord | undefined): CallRecord => ({
      time: call.time,
      model: call.model,
      upstream: call.upstream,
      status: call.status,
      ttfbMs: call.ttfbMs,
      durationMs: call.durationMs,
      input: call.tokens?.input ?? 0,
      cached: call.tokens?.cached ?? 0,
      output: call.tokens?.output ?? 0,
      reasoning: call.tokens?.reasoning ?? 0,
      cache,
      missReason: cache === 'miss' ? missReason(call, previous, rules) : null,
      fingerprint: call.fingerprint,
      error: call.error,
      inputBytes: kept?.inputBytes,
      inputCheckpoints: kept?.inputCheckpoints
    })
    store.recordCall(sessionId, build).then((record) => {
      metrics.callRecorded(record)
      history.add(record)
    }, (err: unknown) => logger.warn({ err }, 'recording a model call failed'))
  }
}
