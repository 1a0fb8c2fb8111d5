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

export interface WebSocketRecord {
  /** The client's path, without its query string. */
  path: string
  session: string
  sessionSource: SessionSource
  /** 101, or the refusal the client got instead (the upstream's, or the gateway's 502/504). */
  status: number
  /** To the upstream's answer to the handshake; -1 when none came. */
  ttfbMs: number
  durationMs: number
  /** Client to upstream, and upstream to client, after the handshake (frames as sent). */
  bytesIn: number
  bytesOut: number
  /** The side that sent the first Close frame, or whose connection ended first; or the gateway's shutdown. */
  endedBy: 'client' | 'upstream' | 'shutdown'
  /** Status code of the first Close frame; absent when neither side sent one. */
  closeCode?: number | undefined
  error?: string | undefined
}

/** One JSON line per proxied WebSocket (or refused upgrade), when it ends. */
export function logWebSocket (logger: Logger, record: WebSocketRecord): void {
  logger.info({
    transport: 'websocket',
    method: 'GET',
    path: record.path,
    status: record.status,
    session: record.session,
    session_source: record.sessionSource,
    ttfb_ms: record.ttfbMs < 0 ? null : round(record.ttfbMs),
    duration_ms: round(record.durationMs),
    bytes_in: record.bytesIn,
    bytes_out: record.bytesOut,
    ended_by: record.endedBy,
    close_code: record.closeCode,
    error: record.error
  }, 'request')
}

function round (ms: number): number {
  return Math.round(ms * 10) / 10
}

export interface RefusalRecord {
  method: string
  path: string
  status: number
  /** The gateway error's code, e.g. `invalid_session_id`, `invalid_api_key`. */
  code: string
  durationMs: number
}

/** One JSON line per request the gateway answered itself without going upstream. */
export function logRefusal (logger: Logger, record: RefusalRecord): void {
  logger.info({
    method: record.method,
    path: record.path,
    status: record.status,
    duration_ms: round(record.durationMs),
    ended_by: 'gateway',
    error: record.code
  }, 'refused')
}
