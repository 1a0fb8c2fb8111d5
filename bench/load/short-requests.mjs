/**
 * Closed-loop load of short POSTs at a fixed number of keep-alive connections: wrk when it is
 * installed (C, so it leaves the CPU to the proxy), else an undici pool in this process. Both
 * give completed requests, errors, seconds, and p50/p99 latency in milliseconds.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { Pool } from 'undici'
import { pinned } from '../lib/processes.mjs'
import { percentile } from '../lib/stats.mjs'

const WRK_SCRIPT = join(import.meta.dirname, 'wrk-post.lua')

/**
 * @param options `{ url, body, connections, seconds, maxRequests, expectedBytes, wrk, sessions, rate, pool }`:
 *   `wrk` is the path of the wrk binary, or undefined to use the Node load generator;
 *   `maxRequests` ends a run early after about that many requests (wrk's time is whole
 *   seconds, so without it a smoke round would last a second).
 */
export async function runShortRequests (options) {
  return options.wrk === undefined ? await runWithUndici(options) : await runWithWrk(options)
}

async function runWithWrk ({ url, body, connections, seconds, maxRequests = Infinity, wrk }) {
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--timeout', '10s', '-s', WRK_SCRIPT, url]
  const [file, argv] = pinned('load', wrk, args)
  const env = { ...process.env, BENCH_BODY: body.toString('utf8') }
  if (Number.isFinite(maxRequests)) env.BENCH_MAX_REQUESTS = String(maxRequests)
  const stdout = await wrkOutput(file, argv, env)
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '))
  if (line === undefined) throw new Error(`wrk printed no result:\n${stdout}`)
  const r = JSON.parse(line.slice('BENCH_RESULT '.length))
  return {
    requests: r.requests,
    errors: r.connect + r.read + r.write + r.status + r.timeout,
    seconds: r.duration_us / 1e6,
    p50Ms: r.p50_us / 1000,
    p99Ms: r.p99_us / 1000
  }
}

/**
 * wrk's stdout once it has exited. When the script prints BENCH_ENOUGH (its request bound
 * reached), wrk gets SIGINT, on which it stops at once and still prints its results.
 */
async function wrkOutput (file, argv, env) {
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text) => {
    stdout += text
    if (!child.killed && stdout.includes('BENCH_ENOUGH\n')) child.kill('SIGINT')
  })
  child.stderr.setEncoding('utf8').on('data', (text) => { stderr += text })
  const [code, signal] = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (...ended) => resolve(ended))
  })
  if (code !== 0) throw new Error(`wrk failed: exit ${code ?? signal}\n${stderr}`)
  return stdout
}

/**
 * `rate` > 0: open loop at that many requests per second (request i is due at i / rate s, sent
 * by the first free connection), so CPU per request is compared at the same load whatever the
 * machine's other work does to throughput; 0: closed loop, each connection as fast as it can.
 */
async function runWithUndici ({ url, body, connections, seconds, maxRequests = Infinity, expectedBytes, sessions = 0, rate = 0, pool: kept }) {
  const target = new URL(url)
  // `pool`: the caller's, kept open across calls (slices of one measurement reuse connections).
  const pool = kept ?? new Pool(target.origin, { connections, pipelining: 1 })
  const latencies = []
  let issued = 0
  let errors = 0
  const startedAt = performance.now()
  const deadline = startedAt + seconds * 1000
  const worker = async () => {
    while (performance.now() < deadline && issued < maxRequests) {
      issued++
      if (rate > 0) {
        const due = startedAt + (issued - 1) * 1000 / rate
        const wait = due - performance.now()
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
        if (due >= deadline) break
      }
      const sentAt = performance.now()
      try {
        // `sessions` > 0: each request names one of that many sessions (the routing scenario).
        const headers = sessions > 0 ? { 'content-type': 'application/json', 'session-id': `bench-${issued % sessions}` } : { 'content-type': 'application/json' }
        const response = await pool.request({ path: target.pathname, method: 'POST', headers, body })
        const received = await response.body.arrayBuffer()
        if (response.statusCode !== 200 || (expectedBytes !== undefined && received.byteLength !== expectedBytes)) errors++
      } catch {
        errors++
      }
      latencies.push(performance.now() - sentAt)
    }
  }
  await Promise.all(Array.from({ length: connections }, worker))
  const elapsed = (performance.now() - startedAt) / 1000
  if (kept === undefined) await pool.close()
  latencies.sort((a, b) => a - b)
  return { requests: latencies.length, errors, seconds: elapsed, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }
}
