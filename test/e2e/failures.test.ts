import http from 'node:http'
import { once } from 'node:events'
import { setTimeout as pause } from 'node:timers/promises'
import t from 'tap'
import { request } from 'undici'
import { replyJson, replySse, resetMidStream, sseEvent, type MockUpstream } from '../support/mock-upstream.js'
import { startGatewayWithUnreachableUpstream, startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'

type Assert = Pick<typeof t, 'equal' | 'same'>

/** The gateway still proxies an ordinary request after whatever the test did to it. */
async function stillServes (t: Assert, gateway: RunningGateway, upstream: MockUpstream): Promise<void> {
  upstream.handle(replyJson({ ok: 'after' }))
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}' })
  t.equal(res.statusCode, 200, 'a following request is served')
  t.same(await res.body.json(), { ok: 'after' })
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }
const firstEvent = sseEvent({ type: 'response.created', sequence_number: 0 })

/** Posts with node:http on its own connection, so the test can drop that connection. */
function postOwnConnection (gateway: RunningGateway): http.ClientRequest {
  const req = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } })
  req.on('error', () => {}) // the test destroys it on purpose
  req.end('{"stream":true}')
  return req
}

/** Reads `res` until one whole SSE event has arrived. */
async function firstEventOf (res: http.IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of res) {
    text += String(chunk)
    if (text.includes('\n\n')) break
  }
  return text
}

t.test('a client that leaves mid-stream cancels the upstream request', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  upstream.handle((_req, res) => {
    res.writeHead(200, SSE_HEADERS)
    res.write(firstEvent) // …and never ends
  })
  const arrived = upstream.nextRequest()
  const client = postOwnConnection(gateway)
  const [res] = await once(client, 'response') as [http.IncomingMessage]
  t.equal(await firstEventOf(res), firstEvent, 'the client saw the first event')
  const seen = await arrived
  client.destroy()
  await seen.closed
  t.ok(seen.abortedByPeer(), 'the upstream saw its request closed before its response finished')
  await stillServes(t, gateway, upstream)
})

t.test('a client that leaves before the upstream answered cancels the upstream request', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  upstream.handle(() => {}) // never answers
  const arrived = upstream.nextRequest()
  const client = postOwnConnection(gateway)
  const seen = await arrived
  client.destroy()
  await seen.closed
  t.ok(seen.abortedByPeer(), 'the upstream saw its request closed')
  await stillServes(t, gateway, upstream)
})

t.test('an upstream that drops the connection mid-stream makes the client read fail, never end cleanly', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const broken = resetMidStream(firstEvent, SSE_HEADERS)
  upstream.handle(broken.handler)
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}' })
  t.equal(res.statusCode, 200)
  let received = ''
  await t.rejects((async () => {
    for await (const chunk of res.body) {
      received += String(chunk)
      if (received.includes('\n\n')) broken.reset() // once the client has the first event
    }
  })(), 'reading the body fails')
  t.equal(received, firstEvent, 'what came before the failure arrived intact')
  await stillServes(t, gateway, upstream)
})

t.test('an upstream that refuses connections gets a 502 upstream_unreachable', async (t) => {
  const gateway = await startGatewayWithUnreachableUpstream(t)

  for (const attempt of ['first', 'second']) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"model":"x"}', headers: { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 502, `${attempt} attempt`)
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(await res.body.json(), { error: { message: String, type: 'upstream_error', code: 'upstream_unreachable' } })
  }
  const health = await request(`${gateway.origin}/healthz`)
  t.equal(health.statusCode, 200, 'the gateway itself is still up')
  await health.body.dump()
})

t.test('an upstream that never starts its response gets a 504 upstream_timeout', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { UPSTREAM_HEADERS_TIMEOUT_MS: '300' })
  upstream.handle(() => {}) // accepts, reads the request, never answers
  const arrived = upstream.nextRequest()
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}' })
  t.equal(res.statusCode, 504)
  t.match(await res.body.json(), { error: { message: String, type: 'upstream_error', code: 'upstream_timeout' } })
  const seen = await arrived
  await seen.closed
  t.ok(seen.abortedByPeer(), 'the gateway gave up on the upstream request')
  await stillServes(t, gateway, upstream)
})

t.test('an upstream stream that stalls past the idle timeout is torn, not ended cleanly', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { UPSTREAM_IDLE_TIMEOUT_MS: '300' })
  upstream.handle((_req, res) => {
    res.writeHead(200, SSE_HEADERS)
    res.write(firstEvent) // …then silence
  })
  const arrived = upstream.nextRequest()
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}' })
  t.equal(res.statusCode, 200)
  let received = ''
  await t.rejects((async () => {
    for await (const chunk of res.body) received += String(chunk)
  })(), 'reading the body fails')
  t.equal(received, firstEvent)
  const seen = await arrived
  await seen.closed
  t.ok(seen.abortedByPeer(), 'the stalled upstream request was closed')
  await stillServes(t, gateway, upstream)
})

t.test('a slow stream that outlasts both timeouts, with every gap under them, completes intact', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { UPSTREAM_HEADERS_TIMEOUT_MS: '300', UPSTREAM_IDLE_TIMEOUT_MS: '300' })
  const GAP_MS = 80 // well under 300; 11 gaps and the wait for headers add up to over 300 + 300
  const events = Array.from({ length: 12 }, (_, i) => sseEvent({ type: 'response.output_text.delta', sequence_number: i, delta: `word${i} ` }))
  const waiters: Array<() => void> = []
  const clientSaw = (count: number): Promise<void> => new Promise((resolve) => { waiters[count] = resolve })
  const handler = replySse(events, async (i) => {
    await clientSaw(i + 1) // the client has read event i through the gateway…
    await pause(GAP_MS) // …and the upstream is slow to produce the next one
  })
  upstream.handle(async (req, res, raw) => {
    await pause(GAP_MS * 2) // slow to start too
    await handler(req, res, raw)
  })

  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"stream":true}' })
  t.equal(res.statusCode, 200)
  let received = ''
  for await (const chunk of res.body) {
    received += String(chunk)
    waiters[received.split('\n\n').length - 1]?.()
  }
  t.equal(received, events.join(''), 'every event, in order, and a clean end')
  await stillServes(t, gateway, upstream)
})
