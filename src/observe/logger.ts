import pino, { type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from '../config/load-config.js'

export type { Logger }

/** Header names whose values are credentials. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'api-key', 'x-api-key', 'cookie', 'set-cookie'])

/**
 * Should a log line ever carry a `headers` object, its credentials are blanked. A serializer
 * runs only for lines that have the key; pino's path redaction would run on every line,
 * the per-request one included (it cost ~6 % of the proxy's CPU in the benchmark).
 */
function withoutSecrets (headers: unknown): unknown {
  if (headers === null || typeof headers !== 'object') return headers
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    out[name] = SECRET_HEADERS.has(name.toLowerCase()) ? '[redacted]' : value
  }
  return out
}

/**
 * JSON lines on stdout, written asynchronously so a slow terminal or pipe never stalls a
 * request; `flush()` before exit. The gateway logs no header, key or query string by
 * construction (tests check the log text for them).
 */
export function createLogger (level: LogLevel, destination?: DestinationStream): Logger {
  return pino({
    level,
    serializers: { headers: withoutSecrets },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: { service: 'session-gateway' },
    formatters: { level: (label) => ({ level: label }) }
  }, destination ?? bufferedStdout())
}

/**
 * stdout through a 4 KiB buffer: under load, one write per ~20 lines instead of one per
 * line (a write per line was ~8 % of the proxy's CPU in the benchmark). A timer flushes
 * what waits at least every `flushMs`, so a quiet gateway's lines are not held back.
 */
function bufferedStdout (flushMs = 250): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 })
  setInterval(() => { destination.flush() }, flushMs).unref()
  return destination
}
