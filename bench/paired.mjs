/**
 * Two proxies compared by CPU per request the way (f) compares one upstream with three: fresh
 * processes every round, each warmed, then loaded in turn in half-second slices (ABBA) at a
 * fixed rate, open loop, CPU from the scheduler's nanosecond counts of every thread; the two
 * swap places every second round (rounds in multiples of 4 balance them). The figure
 * is the median of the rounds' own ratios (B ÷ A), with its middle half, its range and the
 * interval of the median; A's own spread between rounds is reported too. Resolves a few per
 * cent where `npm run bench`'s (a), closed loop at full speed, moves by tens on a shared host.
 *
 *   node bench/paired.mjs                           # session-gateway ÷ the node:http + undici floor
 *   node bench/paired.mjs --a gateway --b gateway-tracing   # what tracing costs
 *   node bench/paired.mjs --a cli:/path/to/old/dist/src/cli.js   # this build ÷ another one
 *
 * Contenders: `floor` (bench/proxies/node-undici-proxy.mjs), `gateway` (dist/src/cli.js,
 * defaults), `gateway-tracing` (the same, every request traced to a local OTLP sink),
 * `cli:PATH` (a gateway build elsewhere) or `cli-tracing:PATH` (that build, traced as
 * `gateway-tracing` is). `--a-env` / `--b-env` add JSON environment to either.
 * Pins as `npm run bench` does: the measured proxies on CPU 1, the rest on CPU 0 (2+ CPUs).
 * Build first (`npm run build`).
 *
 * Options (defaults): --a floor, --b gateway, --a-env '{}', --b-env '{}', --rounds 8,
 * --seconds 3 (each contender's share of a round), --warmup 10 (seconds of load on each fresh
 * process before its round: CPU per request settles after ~10 s on Node 20; on Node 24 a
 * gateway compiles for ~25 s, so pass --warmup 30 there), --rate 1500 (requests/s),
 * --connections 50, --sessions 0 (0: no session header; N: N session ids in turn), --help.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { SHORT_STREAM, SMALL_REQUEST } from './fixtures/responses-sse.mjs'
import { BENCH, GATEWAY_CLI, ROOT } from './lib/contenders.mjs'
import { measureRound } from './lib/paired-rounds.mjs'
import { pinProcesses, startProcess, waitForListening } from './lib/processes.mjs'
import { median, percentile } from './lib/stats.mjs'
import { runShortRequests } from './load/short-requests.mjs'


const { values: args } = parseOptions({
  options: {
    a: { type: 'string', default: 'floor' },
    b: { type: 'string', default: 'gateway' },
    'a-env': { type: 'string', default: '{}' },
    'b-env': { type: 'string', default: '{}' },
    rounds: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1500' },
    connections: { type: 'string', default: '50' },
    sessions: { type: 'string', default: '0' },
    help: { type: 'boolean', default: false }
  }
})
if (args.help) {
  // The header comment above is the help.
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8')
  process.stdout.write(source.slice(source.indexOf('/**') + 4, source.indexOf('*/')).replace(/^ \* ?/gm, '') + '\n')
  process.exit(0)
}
const rounds = positive('rounds')
const seconds = positive('seconds')
const warmup = positive('warmup')
const rate = positive('rate')
const connections = positive('connections')
const sessions = Number(args.sessions)

/** parseArgs, with an unknown or malformed option told as usage, not as a stack trace. */
function parseOptions (config) {
  try {
    return parseArgs(config)
  } catch (err) {
    usage(`${err.message} (--help lists them)`)
  }
}

function positive (name) {
  const value = Number(args[name])
  if (!(value > 0)) usage(`--${name}: expected a number above 0, got ${JSON.stringify(args[name])}`)
  return value
}

function usage (problem) {
  process.stderr.write(`bench/paired.mjs: ${problem}\n`)
  process.exit(2)
}

const contenders = [contender('a', args.a, args['a-env']), contender('b', args.b, args['b-env'])]
if (availableParallelism() >= 2) pinProcesses({ taskset: 'taskset', proxy: '1', load: '0' })

const logDir = process.env.TMPDIR ?? '/tmp'
const upstream = startProcess('paired-upstream', process.execPath, [join(BENCH, 'upstream', 'node-upstream.mjs'), '0'], { role: 'load', env: { PATH: process.env.PATH ?? '' }, logFile: join(logDir, 'paired-upstream.log') })
const helpers = [upstream]
try {
  const [upstreamOrigin] = await waitForListening(upstream)
  const sinkOrigin = [args.a, args.b].some(isTraced) ? await startSink() : undefined
  process.stdout.write(`B ÷ A, CPU per request: A = ${args.a}, B = ${args.b}; ${rounds} rounds of ${seconds} s each at ${rate} requests/s over ${connections} connections, warmed ${warmup} s\n`)
  const ratios = []
  const aMicros = []
  for (let round = 0; round < rounds; round++) {
    const row = await measureOneRound(contenders, round, upstreamOrigin, sinkOrigin)
    ratios.push(row.b / row.a)
    aMicros.push(row.a)
    process.stdout.write(`round ${round + 1}: A ${row.a.toFixed(1)} µs, B ${row.b.toFixed(1)} µs, ${(row.b / row.a).toFixed(3)}×${row.errors > 0 ? ` (${row.errors} errors)` : ''}\n`)
  }
  process.stdout.write(summary(ratios, aMicros))
} finally {
  for (const helper of helpers) await helper.stop('SIGTERM', 5_000)
}

function isTraced (spec) {
  return spec === 'gateway-tracing' || spec.startsWith('cli-tracing:')
}

/** The local OTLP sink `gateway-tracing` exports to (its own process, not measured). */
async function startSink () {
  const sink = startProcess('paired-otlp-sink', process.execPath, [join(BENCH, 'upstream', 'otlp-sink.mjs'), '0'], { role: 'load', env: { PATH: process.env.PATH ?? '' }, logFile: join(logDir, 'paired-otlp-sink.log') })
  helpers.push(sink)
  return (await waitForListening(sink))[0]
}

function contender (slot, spec, extraEnv) {
  let extra
  try {
    extra = JSON.parse(extraEnv)
  } catch {
    usage(`--${slot}-env: expected a JSON object, got ${JSON.stringify(extraEnv)}`)
  }
  if (spec === 'floor') return { slot, script: join(BENCH, 'proxies', 'node-undici-proxy.mjs'), env: (upstreamOrigin) => ({ UPSTREAM_ORIGIN: upstreamOrigin, ...extra }) }
  const build = /^cli(?:-tracing)?:(.+)$/.exec(spec)
  const script = build === null ? GATEWAY_CLI : build[1]
  if (spec !== 'gateway' && spec !== 'gateway-tracing' && build === null) usage(`--${slot}: expected floor, gateway, gateway-tracing, cli:PATH or cli-tracing:PATH, got ${JSON.stringify(spec)}`)
  return {
    slot,
    script,
    env: (upstreamOrigin, sinkOrigin) => ({
      UPSTREAM_URL: `${upstreamOrigin}/v1`,
      LOG_LEVEL: 'info',
      // As (a)'s tracing contender: every request sampled, a queue no span is dropped from.
      ...(isTraced(spec) ? { OTEL_EXPORTER_OTLP_ENDPOINT: sinkOrigin, OTEL_TRACES_SAMPLER: 'always_on', OTEL_BSP_MAX_QUEUE_SIZE: '65536', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048', OTEL_BSP_SCHEDULE_DELAY: '200' } : {}),
      ...extra
    })
  }
}

/**
 * Fresh processes, warmed, then the round's ABBA slices (bench/lib/paired-rounds.mjs). The two
 * contenders swap places (which starts first, its process's name, which leads the slices)
 * every second round, and are warmed in alternating one-second slices: A/A runs with fixed
 * places, each warmed whole in turn, favoured B by ~2 % (0.980×, 0.983×, 0.985× in three
 * sessions), whatever in a place did it.
 */
async function measureOneRound (contenders, round, upstreamOrigin, sinkOrigin) {
  const placed = Math.floor(round / 2) % 2 === 0 ? contenders : [contenders[1], contenders[0]]
  const running = []
  try {
    for (const [place, c] of placed.entries()) running.push(await start(c, place, upstreamOrigin, sinkOrigin))
    await warm(running, round)
    const row = await measureRound(running, load, seconds, round)
    return { a: row.a.cpuMicrosPerRequest, b: row.b.cpuMicrosPerRequest, errors: row.a.errors + row.b.errors }
  } finally {
    for (const r of running) {
      await r.pool.close()
      await r.proc.stop('SIGTERM', 15_000)
    }
  }
}

async function start ({ slot, script, env }, place, upstreamOrigin, sinkOrigin) {
  const proc = startProcess(`paired-${place + 1}`, process.execPath, [script], {
    role: 'proxy',
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env(upstreamOrigin, sinkOrigin) },
    cwd: ROOT,
    logFile: join(logDir, `paired-${place + 1}.log`)
  })
  const [origin] = await waitForListening(proc)
  return { id: slot, proc, server: { pids: () => [proc.pid] }, origin, pool: new Pool(origin, { connections, pipelining: 1 }) }
}

/** `warmup` seconds of load on each, in slices of about a second, taken in turn (ABBA). */
async function warm (running, round) {
  const slices = Math.max(1, Math.round(warmup))
  for (let slice = 0; slice < slices; slice++) {
    const forward = (slice % 2 === 0) === (round % 2 === 1)
    for (const r of forward ? running : [...running].reverse()) await load(r, warmup / slices)
  }
}

async function load ({ origin, pool }, secondsToRun) {
  return await runShortRequests({ url: `${origin}/v1/responses`, body: SMALL_REQUEST, connections, seconds: secondsToRun, sessions, expectedBytes: SHORT_STREAM.length, rate, pool })
}

/**
 * The median ratio with its middle half, range and 95 % interval (order statistics: ranks
 * n/2 ± 1.96·√n/2 of the sorted ratios, no assumption about how the host's noise is shaped),
 * and A's own spread between rounds ((highest − lowest) ÷ median).
 */
function summary (ratios, aMicros) {
  const sorted = [...ratios].sort((x, y) => x - y)
  const n = sorted.length
  const low = Math.max(0, Math.floor(n / 2 - 0.98 * Math.sqrt(n)))
  const high = Math.min(n - 1, Math.ceil(n / 2 + 0.98 * Math.sqrt(n)) - 1)
  const spread = (Math.max(...aMicros) - Math.min(...aMicros)) / median(aMicros)
  const f = (x) => x.toFixed(3)
  return `B ÷ A: median ${f(median(ratios))}× (middle half ${f(percentile(sorted, 25))}–${f(percentile(sorted, 75))}, range ${f(sorted[0])}–${f(sorted[n - 1])}, 95 % interval of the median ${f(sorted[low])}–${f(sorted[high])}); A's own spread between rounds ${(spread * 100).toFixed(1)} %\n`
}
