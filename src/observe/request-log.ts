import type { Logger } from 'pino'
import type { SessionSource } from '../session/resolve-session.js'
import type { RelayOutcome } from '../relay/response-relay.js'

export interface ExchangeRecord {
  method: string
  /** The client's path, without its query string (queries may carry keys). */
  path: string
  session: string
  sessionSource: SessionSource
  durationMs: number
  outcome: RelayOutcome
}

/** One JSON line per proxied request, when it ends. */
export function logExchange (logger: Logger, record: ExchangeRecord): void {
  const { outcome } = record
  logger.info({
    method: record.method,
    path: record.path,
    status: outcome.status,
    session: record.session,
    session_source: record.sessionSource,
    ttfb_ms: outcome.ttfbMs < 0 ? null : round(outcome.ttfbMs),
    duration_ms: round(record.durationMs),
    bytes_out: outcome.bytesOut,
    ended_by: outcome.endedBy,
    error: outcome.failure?.code
  }, 'request')
}

function round (ms: number): number {
  return Math.round(ms * 10) / 10
}
