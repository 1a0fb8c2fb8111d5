/** The soak's command line: a full run (default 3 minutes) or --smoke (about 15 seconds). */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MIX } from './traffic.mjs'

export const USAGE = `Usage: node soak/run.mjs [--smoke] [options]      (npm run soak builds first)

Runs the built gateway (dist/src/cli.js) between a mock upstream and mixed client traffic,
samples its memory, file descriptors, event-loop lag and gauges, checks every byte, and exits
non-zero on any lost or corrupted byte, any unexpected error, or a growth trend.

Modes
  (default)              --duration 3m at --rate 60
  --smoke                about 15 s at a small rate; the growth trend is reported, not judged

Traffic
  --duration D           how long traffic runs: 90s, 5m, 1h (default 3m; smoke 8s)
  --rate N               exchanges started per second (default 60; smoke 15)
  --concurrency N        most exchanges in flight; arrivals beyond are shed and counted (default 256)
  --seed N               seeds kinds and payloads, to replay a run's traffic (default: random)
  --mix K=W,...          relative weights of the kinds of exchange, replacing the default mix
                         (e.g. --mix websocket=3,chain=1 to soak lineage over WebSockets);
                         kinds: ${Object.keys(MIX).join(', ')}

Sampling and verdict
  --sample D             time between samples (default: duration / 36, between 1s and 60s)
  --rss-tolerance P%     allowed growth of median RSS, last third vs middle third (default 10%)
  --rss-slack MB         ... but never less than this many MB (default 16)
  --heap-tolerance P%    the same for the V8 heap in use (default 25%)
  --heap-slack MB        (default 8)
  --fd-tolerance P%      the same for open file descriptors and active handles (default 25%)
  --fd-slack N           (default 24)
  --drain-fd-slack N     fds allowed above the idle baseline once traffic has drained (default 6)
  --abort-latency D      longest time from a client leaving to the upstream seeing its request
                         closed (default 1s)
  --no-trend             report the growth trend without failing on it (implied by --smoke)

Output
  --out FILE             the markdown report (default soak/results/latest.md; smoke:
                         soak/results/smoke.md); FILE's .json (samples) and .svg (plot) beside it
  --log-level L          the gateway's LOG_LEVEL (default info: one line per request, to a file)
  --keep                 keep the scratch directory (gateway and upstream logs) even on success
  --sabotage corrupt     the upstream flips a byte in every 7th stream while announcing the
                         intended bytes' hash: the run must fail (tests the soak itself)`

const ROOT = join(import.meta.dirname, '..', '..')

const MODES = {
  full: { durationMs: 180_000, rate: 60, concurrency: 256 },
  smoke: { durationMs: 8_000, rate: 15, concurrency: 64 }
}

/** `90s`, `5m`, `1h`, `500ms` or a plain number of seconds, in milliseconds. */
export function parseDuration (name, value) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(value).trim())
  if (match === null) throw new Error(`--${name} takes a duration like 90s, 5m or 1h, not "${value}"`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's']
  const ms = Number(match[1]) * unit
  if (ms <= 0) throw new Error(`--${name} must be above zero`)
  return ms
}

function positive (name, value, { integer = false } = {}) {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not "${value}"`)
  return n
}

function percent (name, value) {
  const n = Number(String(value).replace(/%$/, ''))
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} takes a percentage like 10%, not "${value}"`)
  return n / 100
}

function parseMix (text) {
  const mix = {}
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [kind, weight = '1'] = part.split('=')
    if (!(kind in MIX)) throw new Error(`--mix: unknown kind "${kind}"; kinds: ${Object.keys(MIX).join(', ')}`)
    mix[kind] = positive('mix', weight)
  }
  if (Object.keys(mix).length === 0) throw new Error('--mix needs at least one kind')
  return mix
}

export function readOptions (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      mix: { type: 'string' },
      sample: { type: 'string' },
      'rss-tolerance': { type: 'string' },
      'rss-slack': { type: 'string' },
      'heap-tolerance': { type: 'string' },
      'heap-slack': { type: 'string' },
      'fd-tolerance': { type: 'string' },
      'fd-slack': { type: 'string' },
      'drain-fd-slack': { type: 'string' },
      'abort-latency': { type: 'string' },
      'no-trend': { type: 'boolean' },
      out: { type: 'string' },
      'log-level': { type: 'string' },
      keep: { type: 'boolean' },
      sabotage: { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  const smoke = values.smoke === true
  const mode = MODES[smoke ? 'smoke' : 'full']
  const durationMs = values.duration === undefined ? mode.durationMs : parseDuration('duration', values.duration)
  const sampleMs = values.sample === undefined
    ? (smoke ? 1000 : Math.min(60_000, Math.max(1000, Math.round(durationMs / 36 / 1000) * 1000)))
    : parseDuration('sample', values.sample)
  const logLevel = values['log-level'] ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new Error(`--log-level takes fatal, error, warn, info, debug, trace or silent, not "${logLevel}"`)
  if (values.sabotage !== undefined && values.sabotage !== 'corrupt') throw new Error(`--sabotage takes corrupt, not "${values.sabotage}"`)
  const out = values.out ?? join(ROOT, 'soak', 'results', smoke ? 'smoke.md' : 'latest.md')
  return {
    help: values.help === true,
    smoke,
    durationMs,
    rate: values.rate === undefined ? mode.rate : positive('rate', values.rate),
    concurrency: values.concurrency === undefined ? mode.concurrency : positive('concurrency', values.concurrency, { integer: true }),
    mix: values.mix === undefined ? MIX : parseMix(values.mix),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positive('seed', values.seed, { integer: true }),
    sampleMs,
    limits: {
      rss: { tolerance: percent('rss-tolerance', values['rss-tolerance'] ?? '10%'), slack: positive('rss-slack', values['rss-slack'] ?? 16) },
      heap: { tolerance: percent('heap-tolerance', values['heap-tolerance'] ?? '25%'), slack: positive('heap-slack', values['heap-slack'] ?? 8) },
      fds: { tolerance: percent('fd-tolerance', values['fd-tolerance'] ?? '25%'), slack: positive('fd-slack', values['fd-slack'] ?? 24) },
      drainFdSlack: positive('drain-fd-slack', values['drain-fd-slack'] ?? 6),
      abortLatencyMs: values['abort-latency'] === undefined ? 1000 : parseDuration('abort-latency', values['abort-latency'])
    },
    judgeTrend: !smoke && values['no-trend'] !== true,
    out,
    logLevel,
    keep: values.keep === true,
    sabotage: values.sabotage
  }
}
