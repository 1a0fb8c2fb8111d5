/**
 * (f) Routing cost: session-gateway alone, with one upstream and with three (weighted
 * rendezvous, session bound in the store, bodies kept for replay), under the same short-stream
 * load as (a), each request carrying one of 1,000 session ids in `session-id`. Three Node
 * upstreams serve the same stream; the one-upstream gateway uses the first. The figure is CPU
 * per request of the gateway process; the undici load generator is used for both, since wrk
 * cannot vary a header per request here.
 */
import { join } from 'node:path'
import { SHORT_STREAM, SMALL_REQUEST } from '../fixtures/responses-sse.mjs'
import { GATEWAY_CLI, ROOT, startNodeUpstream } from '../lib/contenders.mjs'
import { cpuSeconds, freePort, startProcess, waitForPort } from '../lib/processes.mjs'
import { runShortRequests } from '../load/short-requests.mjs'

const SESSIONS = 1000

export async function routingCost (run) {
  const { rounds, connections, seconds, warmupSeconds } = run.options.short
  const upstreams = []
  const gateways = []
  const results = { connections, seconds, rounds, sessions: SESSIONS, perConfig: {} }
  try {
    for (let i = 0; i < 3; i++) upstreams.push(await startNodeUpstream(run, `routing-upstream-${i}`))
    const list = upstreams.map((u, i) => ({ name: `u${i}`, url: `${u.origin}/v1` }))
    gateways.push({ id: 'one-upstream', server: await startGateway(run, 'gateway-one-upstream', { UPSTREAM_URL: list[0].url }) })
    gateways.push({ id: 'three-upstreams', server: await startGateway(run, 'gateway-three-upstreams', { UPSTREAMS: JSON.stringify(list) }) })
    const load = async (server, secondsToRun) => await runShortRequests({
      url: `${server.origin}/v1/responses`, body: SMALL_REQUEST, connections, seconds: secondsToRun, sessions: SESSIONS,
      maxRequests: run.options.smoke ? 200 : Infinity, expectedBytes: SHORT_STREAM.length, wrk: undefined
    })
    if (warmupSeconds > 0) for (const { server } of gateways) await load(server, warmupSeconds)
    for (let round = 0; round < rounds; round++) {
      // Alternating order, as in (a): neither always runs first.
      for (const { id, server } of round % 2 === 0 ? gateways : [...gateways].reverse()) {
        const before = cpuSeconds(server.pids())
        const result = await load(server, seconds)
        const cpu = cpuSeconds(server.pids()) - before
        const row = { requestsPerSecond: result.requests / result.seconds, cpuMicrosPerRequest: cpu / result.requests * 1e6, p99Ms: result.p99Ms, errors: result.errors }
        run.progress(`(f) round ${round + 1}/${rounds} ${id}: ${Math.round(row.requestsPerSecond)} req/s, ${row.cpuMicrosPerRequest.toFixed(1)} µs CPU/req, p99 ${row.p99Ms.toFixed(2)} ms, ${row.errors} errors`)
        ;(results.perConfig[id] ??= []).push(row)
      }
    }
    const median = (id) => results.perConfig[id].map((r) => r.cpuMicrosPerRequest).sort((a, b) => a - b)[Math.floor(rounds / 2)]
    results.ratio = median('three-upstreams') / median('one-upstream')
    run.note(`(f) routing: CPU/request median ${median('one-upstream').toFixed(1)} µs with one upstream, ${median('three-upstreams').toFixed(1)} µs with three (${results.ratio.toFixed(3)}×; target ≤ 1.05×).`)
  } finally {
    for (const { server } of gateways) await server.stop()
    for (const upstream of upstreams) await upstream.stop()
  }
  return results
}

async function startGateway (run, name, env) {
  const port = await freePort()
  const proc = startProcess(name, process.execPath, [GATEWAY_CLI], {
    role: 'proxy',
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    cwd: ROOT,
    logFile: join(run.dir, `${name}.log`)
  })
  await waitForPort(proc, port)
  return { origin: `http://127.0.0.1:${port}`, pids: () => [proc.pid], stop: async () => await proc.stop('SIGTERM', 15_000) }
}
