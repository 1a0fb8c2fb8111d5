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
 * stdout through a 32 KiB buffer: under load, one write per ~90 lines instead of one per
 * line (a write per line was ~8 % of the proxy's CPU in the benchmark). A timer flushes
 * what waits every `flushMs`, so a quiet gateway's lines are not held back (a tick that falls
 * during a write in progress does nothing: a line waits at most about two ticks).
 *
 * Each write is a round trip through libuv's thread pool (a wake-up of a worker, the write,
 * a wake-up of the loop): 400-byte lines at 1,500 a second through this destination, pinned
 * to one CPU, cost 18–23 µs of CPU a line with a 4 KiB buffer and 12–14 µs with 32 KiB, and
 * the gateway 3–7 % less CPU a request (bench/HISTORY.md, session 9). `maxWrite` must exceed `minLength`.
 *
 * The buffer holds Buffers, not a string: sonic-boom's string mode measures its whole pending
 * string with `Buffer.byteLength` on every write, flattening it each time (~3.7 kB allocated
 * per line at 4 KiB); in buffer mode a line is encoded once and the pending ones are joined
 * once per write.
 */
function bufferedStdout (flushMs = 250): DestinationStream {
  const boom = pino.destination({ dest: 1, sync: false, minLength: 32 * 1024, maxWrite: 64 * 1024, contentMode: 'buffer' })
  setInterval(() => { boom.flush() }, flushMs).unref()
  return {
    write: (line: string) => boom.write(Buffer.from(line) as unknown as string),
    flush: (done?: (err?: Error) => void) => { boom.flush(done) },
    flushSync: () => { boom.flushSync() }
  } as DestinationStream
}
