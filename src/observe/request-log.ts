import type { Logger } from 'pino'
import type { ExchangeOutcome } from '../proxy/exchange.js'
import type { Transport } from './metrics.js'
import type { Session } from '../session/resolve-session.js'

export interface ExchangeLogRecord {
  transport: Transport
  method: string
  /** The client's path, without its query string (queries may carry keys). */
  path: string
  /** Absent for a request the gateway refused before deciding its session. */
  session: Session | undefined
  /** The upstream that answered, or the last one tried. */
  upstream: string | undefined
  /** Upstreams tried; logged when more than one. */
  attempts: number
  durationMs: number
  outcome: ExchangeOutcome
  /** The exchange's trace, when tracing is on. */
  traceId?: string | undefined
}

/**
 * One JSON line per request when it ends: `request` for proxied HTTP requests and WebSockets,
 * `refused` for those the gateway answered itself without going upstream.
 */
export function logExchange (logger: Logger, { transport, method, path, session, upstream, attempts, durationMs, outcome, traceId }: ExchangeLogRecord): void {
  if (outcome.refusedWith !== undefined) {
    logger.info({
      transport: transport === 'websocket' ? transport : undefined,
      method,
      path,
      status: outcome.status,
      duration_ms: round(durationMs),
      ended_by: 'gateway',
      error: outcome.refusedWith,
      trace_id: traceId
    }, 'refused')
    return
  }
  const ws = outcome.webSocket
  const ttfbMs = outcome.ttfbMs < 0 ? null : round(outcome.ttfbMs)
  if (ws === undefined) {
    // The hot path's line: one flat object (keys left undefined are not written).
    logger.info({
      method,
      path,
      status: outcome.status,
      session: session?.id,
      session_source: session?.source,
      upstream,
      attempts: attempts > 1 ? attempts : undefined,
      ttfb_ms: ttfbMs,
      duration_ms: round(durationMs),
      bytes_out: outcome.bytesOut,
      ended_by: outcome.endedBy,
      error: outcome.failure?.code,
      trace_id: traceId
    }, 'request')
    return
  }
  logger.info({
    transport,
    method,
    path,
    status: outcome.status,
    session: session?.id,
    session_source: session?.source,
    upstream,
    attempts: attempts > 1 ? attempts : undefined,
    ttfb_ms: ttfbMs,
    duration_ms: round(durationMs),
    bytes_in: ws.bytesIn,
    bytes_out: outcome.bytesOut,
    ended_by: ws.closedBy,
    close_code: ws.closeCode,
    error: outcome.failure?.code,
    trace_id: traceId
  }, 'request')
}

function round (ms: number): number {
  return Math.round(ms * 10) / 10
}
