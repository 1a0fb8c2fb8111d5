/**
 * (f) Routing cost: session-gateway alone, with one upstream and with three (weighted
 * rendezvous, session bound in the store, bodies kept for replay), under the same short-stream
 * load as (a), each request carrying one of 1,000 session ids in `session-id`. Three upstreams
 * (three ports of one Node process) serve the same stream; the one-upstream gateway uses the
 * first. The figure is CPU per request of the gateway process; the undici load generator is
 * used for both, since wrk cannot vary a header per request here.
 *
 * On a shared 2-CPU machine a minute-scale drift (another process, thermal, GC of the load
 * generator) moves CPU per request by more than the 5 % this measures; at full speed CPU per
 * request follows throughput (more requests per wake-up), which the machine's other work moves
 * by ±50 %; and two identical gateway processes differ by ~5 % for their whole life. So the
 * load is a fixed rate well under saturation (`rate`, requests/s), each round starts both
 * gateways afresh and interleaves them in half-second slices (ABBA), CPU is read from the
 * scheduler's nanosecond counts, and the figure is the median of the rounds' own ratios,
 * reported with their quartiles and range.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Pool } from 'undici'
import { SHORT_STREAM, SMALL_REQUEST } from '../fixtures/responses-sse.mjs'
import { BENCH, GATEWAY_CLI, ROOT } from '../lib/contenders.mjs'
import { measureRound, SLICE_SECONDS } from '../lib/paired-rounds.mjs'
import { startProcess, waitForListening } from '../lib/processes.mjs'
import { median, percentile } from '../lib/stats.mjs'
import { runShortRequests } from '../load/short-requests.mjs'

const SESSIONS = 1000
/**
 * Load on each round's fresh gateways before measuring (the first round's is `warmupSeconds`).
 * After one second at 1,500 requests/s V8 is still compiling the hot path on its background
 * threads, which the process's CPU counts: a gateway measured 340–370 µs per request after
 * one second and 210–265 µs after four, in the same run.
 */
const ROUND_WARMUP_SECONDS = 3
export const ROUTING_LIMIT = 1.05

export async function routingCost (run) {
  const { rounds, connections, seconds, warmupSeconds, rate, aa, cli = GATEWAY_CLI } = run.options.routing
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build it first`)
  const upstreams = []
  let gateways = []
  const results = { aa, cli: cli === GATEWAY_CLI ? undefined : cli, connections, seconds, rounds, rate, sliceSeconds: SLICE_SECONDS, sessions: SESSIONS, perConfig: {}, pairedRatios: [] }
  try {
    upstreams.push(await startUpstreamPorts(run, 3))
    const list = upstreams[0].origins.map((origin, i) => ({ name: `u${i}`, url: `${origin}/v1` }))
    const configs = [
      { id: 'one-upstream', env: { UPSTREAM_URL: list[0].url } },
      // --routing-aa: the same configuration twice, for the method's own spread.
      { id: 'three-upstreams', env: aa ? { UPSTREAM_URL: list[0].url } : { UPSTREAMS: JSON.stringify(list) } }
    ]
    const load = async ({ server, pool }, secondsToRun) => await runShortRequests({
      url: `${server.origin}/v1/responses`, body: SMALL_REQUEST, connections, seconds: secondsToRun, sessions: SESSIONS,
      maxRequests: run.options.smoke ? 200 : Infinity, expectedBytes: SHORT_STREAM.length, wrk: undefined, rate, pool
    })
    for (let round = 0; round < rounds; round++) {
      // Fresh processes every round: two identical gateways differed by ~5 % for their whole
      // life (an A/A run), so a process's own luck must be a round's noise, not the result's bias.
      await stopGateways(gateways)
      gateways = await startGateways(run, cli, configs, connections, round === 0)
      for (const gateway of gateways) await load(gateway, round === 0 ? warmupSeconds : ROUND_WARMUP_SECONDS)
      const row = await measureRound(gateways, load, seconds, round)
      for (const { id } of gateways) (results.perConfig[id] ??= []).push(row[id])
      const ratio = row['three-upstreams'].cpuMicrosPerRequest / row['one-upstream'].cpuMicrosPerRequest
      results.pairedRatios.push(ratio)
      run.progress(`(f) round ${round + 1}/${rounds}: ${describe(row['one-upstream'])} with one upstream, ${describe(row['three-upstreams'])} with three: ${ratio.toFixed(3)}×`)
    }
    Object.assign(results, summarize(results))
    if (aa) run.note('(f) A/A run: both gateways have one upstream; the ratio is the method\'s own spread, not a routing cost.')
    if (cli !== GATEWAY_CLI) run.note(`(f) measured another build: ${cli}.`)
    run.note(`(f) routing: CPU/request three upstreams ÷ one, median of ${rounds} paired rounds ${results.ratio.toFixed(3)}× (quartiles ${results.ratioQ1.toFixed(3)}–${results.ratioQ3.toFixed(3)}, range ${results.ratioLow.toFixed(3)}–${results.ratioHigh.toFixed(3)}); medians ${results.oneMedian.toFixed(1)} and ${results.threeMedian.toFixed(1)} µs; target ≤ ${ROUTING_LIMIT}×.`)
  } finally {
    await stopGateways(gateways)
    for (const upstream of upstreams) await upstream.stop()
  }
  return results
}

/** Both gateways, each with its client pool; `profiled`: under --cpu-prof (the first round's only). */
async function startGateways (run, cli, configs, connections, profiled) {
  const gateways = []
  for (const { id, env } of configs) {
    const server = await startGateway(run, cli, id, env, profiled)
    gateways.push({ id, server, pool: new Pool(server.origin, { connections, pipelining: 1 }) })
  }
  return gateways
}

async function stopGateways (gateways) {
  for (const { pool } of gateways) await pool.close()
  for (const { server } of gateways) await server.stop()
}

function describe (row) {
  return `${Math.round(row.requestsPerSecond)} req/s, ${row.cpuMicrosPerRequest.toFixed(1)} µs CPU/req${row.errors > 0 ? `, ${row.errors} errors` : ''}`
}

function summarize ({ perConfig, pairedRatios }) {
  const sorted = [...pairedRatios].sort((a, b) => a - b)
  const cpu = (id) => perConfig[id].map((r) => r.cpuMicrosPerRequest)
  return {
    ratio: median(pairedRatios),
    ratioQ1: percentile(sorted, 25),
    ratioQ3: percentile(sorted, 75),
    ratioLow: sorted[0],
    ratioHigh: sorted.at(-1),
    roundsWithin: pairedRatios.filter((r) => r <= ROUTING_LIMIT).length,
    oneMedian: median(cpu('one-upstream')),
    threeMedian: median(cpu('three-upstreams')),
    ratioOfMedians: median(cpu('three-upstreams')) / median(cpu('one-upstream'))
  }
}

/**
 * The three upstreams: three ports of one Node upstream process. On loopback the sender's
 * write runs the receiver's TCP path and wakes it, so three half-idle upstream processes would
 * bill the gateway for wake-ups a real network puts on the upstreams' machines; one process
 * serving three ports costs the machine the same in both configurations, and the gateway still
 * keeps three origins, three connection pools and the routed path.
 */
async function startUpstreamPorts (run, count) {
  const proc = startProcess('routing-upstream', process.execPath, [join(BENCH, 'upstream', 'node-upstream.mjs'), ...Array(count).fill('0')], {
    role: 'load',
    env: { PATH: process.env.PATH ?? '' },
    logFile: join(run.dir, 'routing-upstream.log')
  })
  const stop = async () => await proc.stop('SIGTERM', 15_000)
  try {
    return { origins: await waitForListening(proc, { count }), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function startGateway (run, cli, id, env, profiled) {
  // --cpu-prof: each configuration's profile in a folder of its own, summarised side by side.
  const profileDir = run.cpuProfileDir === undefined || !profiled ? undefined : join(run.cpuProfileDir, id)
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
  const profile = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]
  const proc = startProcess(`gateway-${id}`, process.execPath, [...profile, cli], {
    role: 'proxy',
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    cwd: ROOT,
    logFile: join(run.dir, `gateway-${id}.log`)
  })
  const stop = async () => await proc.stop('SIGTERM', 15_000)
  try {
    const [origin] = await waitForListening(proc)
    return { origin, pids: () => [proc.pid], stop }
  } catch (err) {
    await stop()
    throw err
  }
}
