/**
 * Reads the gateway's log file after the run: its request lines (to reconcile with what the
 * clients did), anything at warn or above, and anything that is not a JSON log line (Node's own
 * warnings, such as MaxListenersExceededWarning, land on stderr and in the same file).
 */
import { readFileSync } from 'node:fs'

const EXAMPLES = 5
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 }

export function readGatewayLog (file) {
  const summary = {
    /** transport → count of `msg: "request"` lines */
    requests: { http: 0, websocket: 0 },
    /** `transport ended_by` → count */
    endedBy: {},
    /** HTTP requests by `error` (the upstream failure code), for those that ended by the upstream */
    upstreamErrors: {},
    /** `level msg` → { count, examples } for level ≥ 40 (warn) */
    warnings: {},
    /** Shutdowns the gateway logged: the signal and when (the soak sends one SIGTERM, at the end) */
    shutdowns: [],
    /** Lines that are not JSON (stderr: Node warnings, crashes) */
    other: { count: 0, examples: [] }
  }
  let text
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return summary
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let entry
    try {
      entry = JSON.parse(line)
    } catch {
      summary.other.count++
      if (summary.other.examples.length < EXAMPLES) summary.other.examples.push(line.slice(0, 300))
      continue
    }
    if (typeof entry.signal === 'string' && String(entry.msg).startsWith('shutting down')) summary.shutdowns.push({ signal: entry.signal, time: entry.time })
    if (entry.msg === 'request') {
      const transport = entry.transport ?? 'http'
      summary.requests[transport] = (summary.requests[transport] ?? 0) + 1
      const key = `${transport} ${entry.ended_by}`
      summary.endedBy[key] = (summary.endedBy[key] ?? 0) + 1
      if (entry.error !== undefined) summary.upstreamErrors[entry.error] = (summary.upstreamErrors[entry.error] ?? 0) + 1
    }
    // The gateway writes level labels ("warn"); pino's default is numbers (40).
    const level = typeof entry.level === 'number' ? entry.level : LEVELS[entry.level] ?? 0
    if (level >= 40) {
      const key = `${level >= 50 ? 'error' : 'warn'}: ${entry.msg}`
      const bucket = summary.warnings[key] ??= { count: 0, level, examples: [] }
      bucket.count++
      if (bucket.examples.length < EXAMPLES) bucket.examples.push(line.slice(0, 400))
    }
  }
  return summary
}
