/**
 * What the cache analysis tap costs (`npm run bench:cache`), on a small call, codex-shaped
 * calls, 5 MiB histories and Chat Completions calls (bench/cache/bodies.mjs; `chat` bodies
 * are sent to `/v1/chat/completions`):
 *  1. the tap alone: CPU to read each body through PrefixFingerprint in 64 KiB chunks;
 *  2. through the gateway, each gateway its own process as deployed (`node dist/src/cli.js`),
 *     the client and the upstream in this one: the time of a POST (session header, so the
 *     body streams) to a gateway with CACHE_ANALYSIS on, to one with it off, and to a second
 *     one with it off, in rotating order on one kept-alive connection each, with a pause after
 *     each call (a client reads its answer before it sends again), so work the tap leaves
 *     for after the answer is not charged to the next call. "Added" is the median of the paired
 *     differences on − off; the control, off′ − off, is what noise alone gives (two gateways
 *     that differ in nothing). Each comes with a 95% bootstrap interval of that median; the
 *     tap is "slower" beyond noise when the interval for "added" lies above both 0 and the
 *     control's interval ("faster" when below both), otherwise "no". The gateways' CPU per call (from /proc) shows what the tap costs
 *     even where it adds no time; "read" counts the "on" gateway's last records that name the
 *     request's model, which only the tap reads (a prefix lost or skipped shows there).
 *
 * `node bench/cache/prefix-tap.mjs [--quick] [--only small,codex]` (needs `npm run build`).
 */
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Client } from 'undici'
import { PrefixFingerprint } from '../../dist/src/observe/prefix-fingerprint.js'
import { cpuSeconds, startProcess, waitForListening } from '../lib/processes.mjs'
import { median, percentile } from '../lib/stats.mjs'
import { benchBodies } from './bodies.mjs'

const { values: options } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
const MiB = 1024 * 1024
const CHUNK = 64 * 1024

/** Rounds for a body of `bytes`: about the same time per body. */
function roundsFor (bytes) {
  const full = bytes < 10_000 ? 1000 : bytes < MiB ? 400 : 150
  return options.quick ? Math.ceil(full / 4) : full
}

function tapAlone (body) {
  const rounds = roundsFor(body.length) * 2
  const times = []
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    const tap = new PrefixFingerprint()
    for (let at = 0; at < body.length; at += CHUNK) tap.push(body.subarray(at, at + CHUNK))
    if (tap.result() === undefined) throw new Error('no prefix')
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return times.slice(rounds / 4).sort((a, b) => a - b) // the first quarter warms up
}

/** A 95% interval of the median of `xs`, by resampling (seeded, so runs compare). */
function medianInterval (xs) {
  let seed = 12345
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const medians = []
  for (let b = 0; b < 1000; b++) medians.push(median(xs.map(() => xs[Math.floor(random() * xs.length)])))
  medians.sort((a, b) => a - b)
  return [percentile(medians, 2.5), percentile(medians, 97.5)]
}

async function startUpstream () {
  const upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.end('{"id":"resp_b","object":"response","usage":{"input_tokens":3000,"input_tokens_details":{"cached_tokens":2900},"output_tokens":1}}'))
  })
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  return upstream
}

const ADMIN_TOKEN = 'bench-cache'

/**
 * A gateway on port 0, its port read from /proc (none picked in advance for another process to
 * take first); /metrics on the main port, so that is its one listener whatever the shell sets.
 */
async function startGateway (dir, name, url, analysis) {
  const env = { ...process.env, HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '-1', UPSTREAM_URL: url, LOG_LEVEL: 'warn', CACHE_ANALYSIS: analysis, ADMIN_TOKEN }
  const proc = startProcess(name, process.execPath, ['dist/src/cli.js'], { env, logFile: join(dir, `${name}.log`), cwd: process.cwd() })
  const [origin] = await waitForListening(proc)
  return { proc, client: new Client(origin, { pipelining: 1 }) }
}

/** Of the gateway's newest call records (up to 100), how many name the request's model: only the tap reads it. */
async function recordsWithPrefix ({ client }) {
  const res = await client.request({ path: '/gateway/sessions/bench/requests', method: 'GET', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  const { data } = await res.body.json()
  return `${data.filter((record) => record.model === 'gpt-5').length}/${data.length}`
}

async function send ({ client }, body, pauseMs, path) {
  const t0 = performance.now()
  const res = await client.request({ path, method: 'POST', body, headers: { 'content-type': 'application/json', 'session-id': 'bench' } })
  await res.body.dump()
  const ms = performance.now() - t0
  await sleep(pauseMs)
  return ms
}

/** Each round sends `body` once to each gateway, the order rotating; returns the paired differences and CPU per call. */
async function throughGateways (gateways, body, path) {
  const rounds = roundsFor(body.length)
  const pauseMs = Math.max(1, body.length / 500_000) // ~10 ms after a 5 MiB call
  const names = ['on', 'off', 'control']
  for (let i = 0; i < 10; i++) for (const name of names) await send(gateways[name], body, pauseMs, path) // warm up
  const times = { on: [], off: [], control: [] }
  const cpuBefore = Object.fromEntries(names.map((name) => [name, cpuSeconds([gateways[name].proc.pid])]))
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]
      times[name].push(await send(gateways[name], body, pauseMs, path))
    }
  }
  const cpuMs = (name) => (cpuSeconds([gateways[name].proc.pid]) - cpuBefore[name]) * 1000 / rounds
  return {
    on: median(times.on),
    off: median(times.off),
    added: times.on.map((t, i) => t - times.off[i]),
    control: times.control.map((t, i) => t - times.off[i]),
    cpu: { on: cpuMs('on'), off: cpuMs('off'), control: cpuMs('control') }
  }
}

const ms = (x) => x.toFixed(3)
const interval = ([low, high]) => `[${ms(low)}, ${ms(high)}]`

async function main () {
  const bodies = Object.entries(benchBodies()).filter(([name]) => options.only === undefined || options.only.split(',').some((o) => name.includes(o)))
  console.log(`node ${process.version}; ${options.quick ? 'quick' : 'full'} run\n`)
  console.log('| body | bytes | tap alone, ms CPU: median [p10, p90] | MB/s |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const [name, body] of bodies) {
    const times = tapAlone(body)
    const mid = median(times)
    console.log(`| ${name} | ${body.length.toLocaleString('en')} | ${ms(mid)} [${ms(percentile(times, 10))}, ${ms(percentile(times, 90))}] | ${(body.length / 1e6 / (mid / 1000)).toFixed(0)} |`)
  }
  const upstream = await startUpstream()
  const url = `http://127.0.0.1:${upstream.address().port}/v1`
  const dir = mkdtempSync(join(tmpdir(), 'bench-cache-'))
  const gateways = { on: await startGateway(dir, 'on', url, 'true'), off: await startGateway(dir, 'off', url, 'false'), control: await startGateway(dir, 'control', url, 'false') }
  try {
    console.log('\n| body | on ms | off ms | added ms [95%] | control off′ − off ms [95%] | beyond noise | CPU ms per call on / off / off′ | read |')
    console.log('| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |')
    for (const [name, body] of bodies) {
      const r = await throughGateways(gateways, body, name.startsWith('chat') ? '/v1/chat/completions' : '/v1/responses')
      const added = medianInterval(r.added)
      const control = medianInterval(r.control)
      const measurable = added[0] > Math.max(0, control[1]) ? 'slower' : added[1] < Math.min(0, control[0]) ? 'faster' : 'no'
      console.log(`| ${name} | ${ms(r.on)} | ${ms(r.off)} | ${ms(median(r.added))} ${interval(added)} | ${ms(median(r.control))} ${interval(control)} | ${measurable} | ${r.cpu.on.toFixed(2)} / ${r.cpu.off.toFixed(2)} / ${r.cpu.control.toFixed(2)} | ${await recordsWithPrefix(gateways.on)} |`)
    }
  } finally {
    for (const g of Object.values(gateways)) { await g.client.close(); await g.proc.stop() }
    upstream.close()
  }
}

await main()
