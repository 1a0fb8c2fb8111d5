/**
 * Regression: health probes went through the pool that carries requests, so with
 * `upstream.connections` set and every connection to an upstream carrying a stream, a probe
 * waited for a free connection. undici cuts a request that waits so only once it has one: the
 * probe's deadline passed unheard, no probe reached the upstream while its streams ran, and the
 * stale probe, cut as it finally got a connection, counted as a failure and ejected a healthy
 * upstream. Probes now go on connections of their own.
 */
import http from 'node:http'
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { startGateway } from '../support/gateway.js'
import { replyJson, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

const EJECTED = 'upstream ejected: its health probe failed'
const MODELS = { object: 'list', data: [] }

function probesSeen (upstream: MockUpstream): number {
  return upstream.requests.filter((req) => req.method === 'GET' && req.url === '/v1/models').length
}

/** Resolves once `upstream` has received `count` probes in all. */
async function probes (upstream: MockUpstream, count: number): Promise<void> {
  while (probesSeen(upstream) < count) await upstream.nextRequest()
}

async function upstreamState (origin: string, name: string): Promise<string | undefined> {
  const ready = await (await fetch(`${origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string }> }
  return ready.upstreams.find((u) => u.name === name)?.state
}

t.test('an upstream whose every pooled connection carries a stream is still probed, on time, and stays healthy', async (t) => {
  const held: ServerResponse[] = []
  // Answers probes at once; holds each model call's stream open until the test ends it.
  const busy = await startMockUpstream((req, res, raw) => {
    if (req.method === 'GET') return replyJson(MODELS)(req, res, raw)
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: response.created\ndata: {"type":"response.created"}\n\n')
    held.push(res)
  })
  const well = await startMockUpstream(replyJson(MODELS))
  t.teardown(busy.close)
  t.teardown(well.close)
  const probe = { probe_path: '/models', probe_interval_ms: 100, probe_timeout_ms: 300 }
  const gateway = await startGateway({
    // One connection per upstream: the stream below takes busy's.
    UPSTREAM_CONNECTIONS: '1',
    UPSTREAM_FAILURES_TO_EJECT: '1',
    UPSTREAMS: JSON.stringify([{ name: 'busy', url: busy.url, ...probe }, { name: 'well', url: well.url, ...probe }])
  })
  t.teardown(gateway.close)

  const session = sessionsHomedOn('busy', ['busy', 'well'], 1, 'full-pool')[0]!
  const stream = http.request(`${gateway.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'session-id': session } })
  stream.end('{"model":"gpt-test","input":"hi","stream":true}')
  const answer = await new Promise<http.IncomingMessage>((resolve) => stream.on('response', resolve))
  t.equal(answer.statusCode, 200, 'the stream runs on busy')
  const busyBefore = probesSeen(busy)

  // Six probes of well take six intervals, twice busy's probe timeout: busy's run on the same clock.
  await probes(well, probesSeen(well) + 6)
  t.ok(probesSeen(busy) - busyBefore >= 2, `busy was probed while its stream ran (${probesSeen(busy) - busyBefore} probes)`)

  // The stream ends and frees the pooled connection; a probe after it finds nothing stale to fail.
  const body = new Promise<void>((resolve) => { answer.on('end', resolve).resume() })
  held[0]!.end('event: response.completed\ndata: {"type":"response.completed"}\n\n')
  await body
  await probes(busy, probesSeen(busy) + 2)
  t.same(gateway.logs.filter((line) => line.msg === EJECTED), [], 'no probe failed')
  t.equal(await upstreamState(gateway.origin, 'busy'), 'healthy', '/readyz says busy is healthy')
})
