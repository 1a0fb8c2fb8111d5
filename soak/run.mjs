/**
 * The soak run: the built gateway between a mock upstream and sustained mixed traffic, for
 * minutes, sampled all along. `node soak/run.mjs --help` for the options; soak/README.md for
 * what is checked and why.
 *
 * Exit status: 0 pass, 1 a check failed, 2 the run could not be set up.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { basename, join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { startProcess, waitForListening } from '../bench/lib/processes.mjs'
import { readGatewayLog } from './lib/gateway-log.mjs'
import { readOptions, USAGE } from './lib/options.mjs'
import { convertToPng, renderMarkdown, renderSvg } from './lib/report.mjs'
import { createSampler, readProc } from './lib/sampler.mjs'
import { createTally, errorCount } from './lib/tally.mjs'
import { createContext, runLoad } from './lib/load.mjs'
import { assignPhases, judge } from './lib/verdict.mjs'

const ROOT = join(import.meta.dirname, '..')
const CLI = join(ROOT, 'dist', 'src', 'cli.js')

/**
 * The gateway's settings for the run. Timeouts and store bounds are shortened so that what
 * takes hours in production (the session store reaching its bound, bindings expiring, idle
 * timeouts firing) happens many times in minutes.
 */
function gatewaySettings ({ rate, durationMs }) {
  return {
    UPSTREAM_IDLE_TIMEOUT_MS: '3000',
    SESSION_MAX_ENTRIES: String(sessionBound(rate, durationMs)),
    SESSION_IDLE_TTL_SECONDS: '60',
    SHUTDOWN_GRACE_MS: '5000'
  }
}

/** Lineage bindings the traffic mix creates per exchange started (measured: ~1.45). */
const BINDINGS_PER_EXCHANGE = 1.5

/**
 * A session-store bound the traffic fills in the first sixth of the run, inside the warm-up
 * third: a store still filling would look like a leak to the growth check. Never below 200,
 * so a binding lives long enough for a lineage chain's next turn.
 */
function sessionBound (rate, durationMs) {
  return Math.max(200, Math.round(BINDINGS_PER_EXCHANGE * rate * durationMs / 1000 / 6))
}

/** Longest wait, once arrivals stop, for the exchanges in flight and the gateway's gauge to reach zero. */
const DRAIN_TIMEOUT_MS = 30_000
/** Longest wait, after the clients close their connections, for the gateway's fds to settle (its idle upstream connections close after 4 s). */
const IDLE_CONNECTIONS_SETTLE_MS = 8_000

/** The port of a process's one listener (`waitForListening`'s origins). */
function portOf ([origin]) {
  return Number(new URL(origin).port)
}

function progress (message) {
  process.stderr.write(`soak: ${message}\n`)
}

async function main () {
  let options
  try {
    options = readOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`soak: ${err.message}\n\n${USAGE}\n`)
    return 2
  }
  if (options.help) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  if (!existsSync(CLI)) {
    process.stderr.write(`soak: ${relative(process.cwd(), CLI)} is missing: run "npm run build" first (npm run soak does)\n`)
    return 2
  }
  // Ctrl-C: exit through 'exit', so the child processes are killed (see bench/lib/processes.mjs).
  process.once('SIGINT', () => process.exit(130))

  // The processes' logs go beside the report (kept when the run fails, or with --keep).
  const scratch = `${options.out.replace(/\.md$/, '')}-logs`
  rmSync(scratch, { recursive: true, force: true })
  mkdirSync(scratch, { recursive: true })
  const machine = { node: process.version, cpus: cpus().length, loadStart: loadavg()[0].toFixed(2), loadEnd: '' }
  // Both listen on port 0 and the port each got is read from /proc (see waitForListening):
  // none is picked in advance for another process to take first.
  const sabotage = options.sabotage === 'corrupt' ? ['--corrupt-every', '7'] : []
  const upstream = startProcess('upstream', process.execPath, [join(ROOT, 'soak', 'upstream.mjs'), '0', ...sabotage], { env: { PATH: process.env.PATH }, logFile: join(scratch, 'upstream.log'), cwd: ROOT })
  const upstreamPort = portOf(await waitForListening(upstream))
  const settingsEnv = gatewaySettings(options)
  const gatewayEnv = { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}/v1`, LOG_LEVEL: options.logLevel, ...settingsEnv }
  // Exactly these variables (and PATH): nothing from this shell (REDIS_URL, OPENAI_API_KEY, …) leaks in.
  const gateway = startProcess('gateway', process.execPath, [CLI], { env: { PATH: process.env.PATH, ...gatewayEnv }, logFile: join(scratch, 'gateway.log'), cwd: ROOT })
  const gatewayPort = portOf(await waitForListening(gateway))
  progress(`gateway pid ${gateway.pid} on :${gatewayPort}, upstream :${upstreamPort}; logs in ${scratch}`)

  const tally = createTally()
  const sampler = createSampler({ pid: gateway.pid, port: gatewayPort, tally })
  const samples = []
  await sleep(500)
  samples.push(await sampler.sample('idle'))

  // Plenty of connections; keep-alive as a real SDK client does.
  const agent = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 10_000 })
  const idleTimeoutMs = Number(settingsEnv.UPSTREAM_IDLE_TIMEOUT_MS)
  const ctx = createContext({ gatewayPort, agent, tally, seed: options.seed, idleTimeoutMs, scale: options.smoke ? 0.4 : 1 })
  const startedAt = Date.now()
  progress(`${options.durationMs / 1000} s of traffic at ${options.rate}/s, seed ${options.seed}; a sample every ${options.sampleMs / 1000} s`)

  let arriving = true
  const load = runLoad({ rate: options.rate, concurrency: options.concurrency, durationMs: options.durationMs, mix: options.mix, ctx, onArrivalsEnd: () => { arriving = false } })
  const sampling = (async () => {
    let next = performance.now() + options.sampleMs
    while (!ctx.stopped) {
      await sleep(Math.max(0, next - performance.now()))
      next += options.sampleMs
      if (!gateway.running()) {
        tally.errors['gateway-exited'] = { count: 1, examples: [`gateway: ${gateway.exitDescription()} during the run`] }
        ctx.stopped = true
        break
      }
      if (!arriving && tally.inFlight === 0) break
      try {
        const s = await sampler.sample(arriving ? 'load' : 'draining')
        samples.push(s)
        progress(`t=${((s.at - samples[0].at) / 1000).toFixed(0)}s rss ${s.rssMb.toFixed(1)} MB heap ${s.heapUsedMb.toFixed(1)} MB fds ${s.fds} active ${s.activeStreams} lag p99 ${s.lagP99Ms.toFixed(1)} ms cpu ${s.cpuPercent.toFixed(0)}% done/s ${s.finishedPerS.toFixed(1)} errors ${s.errors}`)
      } catch (err) {
        progress(`sample failed: ${err.message}`)
      }
    }
  })()
  await load
  await sampling
  progress(`traffic stopped; ${errorCount(tally)} unexpected outcomes so far; draining`)

  const upstreamStats = async () => {
    const res = await request(`http://127.0.0.1:${upstreamPort}/_soak/stats`, { reset: true })
    return await res.body.json()
  }
  let stats = await upstreamStats()
  if (gateway.running()) {
    const deadline = performance.now() + DRAIN_TIMEOUT_MS
    for (;;) {
      const s = await sampler.sample('draining')
      stats = await upstreamStats()
      if ((s.activeStreams === 0 && stats.httpOpen === 0 && stats.webSocketsOpen === 0) || performance.now() > deadline) break
      await sleep(250)
    }
    await agent.close()
    // The gateway closes its idle upstream connections after their keep-alive timeout (4 s).
    const baselineFds = samples[0].fds
    const settleBy = performance.now() + IDLE_CONNECTIONS_SETTLE_MS
    while (performance.now() < settleBy && readProc(gateway.pid).fds > baselineFds + options.limits.drainFdSlack) await sleep(250)
    samples.push(await sampler.sample('drained'))
    stats = await upstreamStats()
  }
  await sampler.close()
  machine.loadEnd = loadavg()[0].toFixed(2)

  const stopAt = performance.now()
  const requestedAt = Date.now()
  const exit = await gateway.stop('SIGTERM', 15_000)
  const shutdown = { code: exit.code, signal: exit.signal, ms: performance.now() - stopAt, requestedAt }
  await upstream.stop()

  const log = readGatewayLog(join(scratch, 'gateway.log'))
  assignPhases(samples)
  const verdict = judge({ samples, tally, upstream: stats, shutdown, log, options, idleTimeoutMs })

  const out = options.out
  const base = out.replace(/\.md$/, '')
  const jsonFile = `${base}.json`
  const svgFile = `${base}.svg`
  const settings = { startedAt, durationS: options.durationMs / 1000, gatewayEnv: { LOG_LEVEL: options.logLevel, ...settingsEnv } }
  writeFileSync(svgFile, renderSvg(samples, `session-gateway soak, ${new Date(startedAt).toISOString()}: ${verdict.pass ? 'PASS' : 'FAIL'}`))
  const png = convertToPng(svgFile)
  const files = [basename(jsonFile), basename(svgFile), ...(png === undefined ? [] : [basename(png)])]
  if (!verdict.pass || options.keep) files.push(`${basename(scratch)}/ (gateway.log, upstream.log)`)
  const t0 = samples[0].at
  writeFileSync(jsonFile, JSON.stringify({
    verdict,
    options: { ...options, help: undefined },
    settings,
    machine,
    traffic: { ...tally, clientAborts: tally.clientAborts.size, stalls: tally.stalls.size },
    upstream: { ...stats, httpClosedEarly: Object.keys(stats.httpClosedEarly).length, webSocketClosedEarly: Object.keys(stats.webSocketClosedEarly).length },
    log,
    samples: samples.map((s) => ({ ...s, t: (s.at - t0) / 1000 }))
  }, null, 2) + '\n')
  const markdown = renderMarkdown({ options, settings, machine, tally, verdict, samples, log, upstream: stats, files })
  writeFileSync(out, markdown)
  process.stdout.write(markdown)
  progress(`${verdict.pass ? 'PASS' : 'FAIL'}; report in ${relative(process.cwd(), out)}`)
  if (verdict.pass && !options.keep) rmSync(scratch, { recursive: true, force: true })
  return verdict.pass ? 0 : 1
}

main().then((code) => { process.exitCode = code }, (err) => {
  process.stderr.write(`soak: ${err.stack ?? err}\n`)
  process.exitCode = 2
})
