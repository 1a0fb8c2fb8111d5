/**
 * (a) Short streamed responses at a fixed number of keep-alive connections: requests/s, the
 * proxy process's CPU time per request, p50/p99 latency. The upstream answers the fixed ~2.5 kB,
 * 8-event stream (nginx when installed), so nearly all the CPU a round costs the proxy is its
 * own per-request overhead.
 */
import { request, Agent } from 'undici'
import { SHORT_STREAM, SMALL_REQUEST } from '../fixtures/responses-sse.mjs'
import { startStaticUpstream } from '../lib/contenders.mjs'
import { cpuSeconds } from '../lib/processes.mjs'
import { runShortRequests } from '../load/short-requests.mjs'
import { keepCorrect, startProxies, stopAll, turnOrder } from './proxies-in-front.mjs'

export async function shortStreams (run) {
  const { rounds, connections, seconds, warmupSeconds } = run.options.short
  const upstream = await startStaticUpstream(run)
  const results = { connections, seconds, rounds, upstream: run.tools.nginx === undefined ? 'the Node upstream' : 'nginx', loadgen: run.tools.wrk === undefined ? 'undici (in-process)' : 'wrk', perProxy: {} }
  let running = []
  try {
    running = await keepCorrect(run, '(a) short streams', await startProxies(run, upstream), answersShortStream)
    const load = (server, secondsToRun) => runShortRequests({
      url: `${server.origin}/v1/responses`,
      body: SMALL_REQUEST,
      connections,
      seconds: secondsToRun,
      maxRequests: run.options.smoke ? 200 : Infinity,
      expectedBytes: SHORT_STREAM.length,
      wrk: run.tools.wrk
    })
    if (warmupSeconds > 0) {
      for (const { server } of running) await load(server, warmupSeconds)
    }
    for (let round = 0; round < rounds; round++) {
      for (const { proxy, server } of turnOrder(running, round)) {
        const cpuBefore = cpuSeconds(server.pids())
        const result = await load(server, seconds)
        const cpu = cpuSeconds(server.pids()) - cpuBefore
        run.progress(`(a) round ${round + 1}/${rounds} ${proxy.label}: ${Math.round(result.requests / result.seconds)} req/s, ${(cpu / result.requests * 1e6).toFixed(1)} µs CPU/req, p99 ${result.p99Ms.toFixed(2)} ms, ${result.errors} errors`)
        ;(results.perProxy[proxy.id] ??= []).push({
          requestsPerSecond: result.requests / result.seconds,
          cpuMicrosPerRequest: result.requests > 0 ? (cpu / result.requests) * 1e6 : NaN,
          p50Ms: result.p50Ms,
          p99Ms: result.p99Ms,
          requests: result.requests,
          errors: result.errors
        })
      }
    }
  } finally {
    await stopAll(running)
    await upstream.stop()
  }
  return results
}

/** 200, an event stream, and the upstream's exact bytes, three times over one connection. */
async function answersShortStream (server) {
  const dispatcher = new Agent({ connections: 1 })
  try {
    for (let i = 0; i < 3; i++) {
      const response = await request(`${server.origin}/v1/responses`, {
        method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: SMALL_REQUEST
      })
      const body = Buffer.from(await response.body.arrayBuffer())
      if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`)
      if (!String(response.headers['content-type']).startsWith('text/event-stream')) throw new Error(`content-type ${response.headers['content-type']}`)
      if (!body.equals(SHORT_STREAM)) throw new Error(`body differs from the upstream's (${body.length} bytes, expected ${SHORT_STREAM.length})`)
    }
  } finally {
    await dispatcher.close()
  }
}
