/** The benchmark's command line, and the sizes of its three modes: full, --quick and --smoke. */
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'

const PROXY_IDS = ['nginx', 'node-undici', 'fastify-http-proxy', 'session-gateway', 'session-gateway-tracing']

export const USAGE = `Usage: node bench/run.mjs [--smoke | --quick] [options]

Modes
  (default)            full run: 7 rounds, 10,000 held streams for 60 s (about 12 minutes)
  --quick              5 short rounds, 1,000 held streams for 10 s (about 4 minutes)
  --smoke              one tiny round of each scenario; checks every proxy answers correctly
                       and exits non-zero if one does not (about 15 seconds)

Options
  --only a,b,c,d,e     scenarios to run (a short, b long, c held, d large bodies,
                       e footprint: start time and idle memory; f routing: one upstream
                       against three, run only when named)
  --without nginx,wrk  act as if these were not installed (Node upstream / load generator)
  --proxies LIST       only these proxies: nginx, node-undici, fastify-http-proxy,
                       session-gateway, session-gateway-tracing (default: all; the
                       tracing one runs in (a) only)
  --rounds N           rounds of (a), (b), (d) and (f)
  --seconds S          length of one (a) or (f) round per proxy
  --connections N      (a) and (f) keep-alive connections
  --rate N             (f) requests per second, open loop (default 1500; 0: as fast as
                       each connection can)
  --routing-aa         (f) an A/A run: the "three upstreams" gateway gets the same one
                       upstream, so the ratio shows the method's own spread
  --routing-cli PATH   (f) run another gateway build (its dist/src/cli.js) instead of this
                       one, e.g. to find which commit changed the figure
  --streams N          (c) streams held open at once
  --hold S             (c) seconds each stream stays open
  --interval MS        (c) milliseconds between a stream's events
  --body-mb N          (d) request body size in MiB
  --cpu-prof           run session-gateway under --cpu-prof in each scenario and
                       summarise its profile in the report
  --out FILE           where to write the report (default bench/results/latest.md,
                       bench/results/smoke.md for --smoke)
  --keep               keep the scratch directory (logs, nginx configs)
  --no-pin             do not pin processes to CPUs (default with 2+ CPUs and taskset:
                       the measured proxy alone on the last CPU, everything else on the rest)`

const MODES = {
  full: {
    short: { rounds: 7, connections: 50, seconds: 8, warmupSeconds: 5 },
    long: { rounds: 5, streams: 20, events: 40, intervalMs: 100 },
    held: { rounds: 1, streams: 10_000, holdSeconds: 60, intervalMs: 1000, openPerSecond: 2000 },
    large: { rounds: 5, bytes: 5 * 2 ** 20, requestsPerKind: 40 },
    footprint: { starts: 9, idleMs: 1000 },
    // (f): many short rounds, each pairing the two configurations back to back, so that a
    // ratio is taken between measurements seconds apart, not minutes.
    routing: { rounds: 21, connections: 50, seconds: 4, warmupSeconds: 5, rate: 1500 }
  },
  quick: {
    short: { rounds: 5, connections: 50, seconds: 5, warmupSeconds: 3 },
    long: { rounds: 3, streams: 20, events: 20, intervalMs: 100 },
    held: { rounds: 1, streams: 1000, holdSeconds: 10, intervalMs: 1000, openPerSecond: 2000 },
    large: { rounds: 3, bytes: 5 * 2 ** 20, requestsPerKind: 20 },
    footprint: { starts: 5, idleMs: 1000 },
    routing: { rounds: 11, connections: 50, seconds: 3, warmupSeconds: 3, rate: 1500 }
  },
  // Smoke: each scenario's every step once, as briefly as still checks it (a few events per
  // stream, (a) bounded at 200 requests); the figures mean nothing.
  smoke: {
    short: { rounds: 1, connections: 8, seconds: 1, warmupSeconds: 0 },
    long: { rounds: 1, streams: 4, events: 5, intervalMs: 20 },
    held: { rounds: 1, streams: 50, holdSeconds: 0.2, intervalMs: 50, openPerSecond: 2000 },
    large: { rounds: 1, bytes: 2 ** 20, requestsPerKind: 2 },
    footprint: { starts: 1, idleMs: 0 },
    routing: { rounds: 1, connections: 8, seconds: 1, warmupSeconds: 0, rate: 0 }
  }
}

export function readOptions (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean' },
      quick: { type: 'boolean' },
      only: { type: 'string' },
      without: { type: 'string' },
      proxies: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      'routing-aa': { type: 'boolean' },
      'routing-cli': { type: 'string' },
      streams: { type: 'string' },
      hold: { type: 'string' },
      interval: { type: 'string' },
      'body-mb': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'no-pin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.smoke && values.quick) throw new Error('--smoke and --quick exclude each other')
  const mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full'
  const sizes = structuredClone(MODES[mode])
  const number = (name, value) => {
    const n = Number(value)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, not "${value}"`)
    return n
  }
  if (values.rounds !== undefined) sizes.short.rounds = sizes.long.rounds = sizes.large.rounds = sizes.routing.rounds = Math.round(number('rounds', values.rounds))
  if (values.seconds !== undefined) sizes.short.seconds = sizes.routing.seconds = number('seconds', values.seconds)
  if (values.connections !== undefined) sizes.short.connections = sizes.routing.connections = Math.round(number('connections', values.connections))
  // (f) A/A: both gateways with one upstream, to see how far the method moves when nothing differs.
  sizes.routing.aa = values['routing-aa'] === true
  if (values['routing-cli'] === '') throw new Error('--routing-cli needs the path of a build\'s dist/src/cli.js')
  sizes.routing.cli = values['routing-cli'] === undefined ? undefined : resolve(values['routing-cli'])
  if (values.rate !== undefined) sizes.routing.rate = values.rate === '0' ? 0 : Math.round(number('rate', values.rate))
  if (values.streams !== undefined) sizes.held.streams = Math.round(number('streams', values.streams))
  if (values.hold !== undefined) sizes.held.holdSeconds = number('hold', values.hold)
  if (values.interval !== undefined) sizes.held.intervalMs = number('interval', values.interval)
  if (values['body-mb'] !== undefined) sizes.large.bytes = Math.round(number('body-mb', values['body-mb']) * 2 ** 20)
  const scenarios = (values.only ?? 'a,b,c,d,e').split(',').map((s) => s.trim()).filter(Boolean)
  for (const s of scenarios) if (!['a', 'b', 'c', 'd', 'e', 'f'].includes(s)) throw new Error(`--only takes a, b, c, d, e and f, not "${s}"`)
  const without = (values.without ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  for (const w of without) if (!['nginx', 'wrk'].includes(w)) throw new Error(`--without takes nginx and wrk, not "${w}"`)
  const proxies = values.proxies === undefined ? PROXY_IDS : values.proxies.split(',').map((s) => s.trim()).filter(Boolean)
  for (const p of proxies) if (!PROXY_IDS.includes(p)) throw new Error(`--proxies takes ${PROXY_IDS.join(', ')}, not "${p}"`)
  return {
    help: values.help === true,
    mode,
    smoke: mode === 'smoke',
    ...sizes,
    scenarios,
    without,
    proxies,
    cpuProfile: values['cpu-prof'] === true,
    out: values.out,
    keep: values.keep === true,
    pin: values['no-pin'] !== true
  }
}
