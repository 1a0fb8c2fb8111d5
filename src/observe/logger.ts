import pino, { type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from '../config/load-config.js'

export type { Logger }

/** Paths pino blanks out, should anything ever log a request's headers or the config. */
const REDACT = [
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers["api-key"]',
  '*.headers["x-api-key"]',
  '*.api_key',
  '*.apiKey'
]

/**
 * JSON lines on stdout, written asynchronously so a slow terminal or pipe never stalls a
 * request; `flush()` before exit.
 */
export function createLogger (level: LogLevel, destination?: DestinationStream): Logger {
  return pino({
    level,
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: { service: 'session-gateway' },
    formatters: { level: (label) => ({ level: label }) }
  }, destination ?? pino.destination({ dest: 1, sync: false }))
}
