import http from 'node:http'
import { once } from 'node:events'
import t from 'tap'
import { request } from 'undici'
import { replyJson, replySse, resetMidStream, responseStream, sseEvent, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { startGateway, startGatewayWithUnreachableUpstream, startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8' }

/** The request log lines written for session `id`. */
function linesFor (gateway: RunningGateway, id: string): Array<Record<string, unknown>> {
  return gateway.logs.filter((line) => line.msg === 'request' && line.session === id)
}

async function logFor (gateway: RunningGateway, id: string): Promise<Record<string, unknown>> {
  return await gateway.waitForLog((line) => line.msg === 'request' && line.session === id)
}

/**
 * Proves no second line for `id` turns up late: one more request's line is awaited, and lines
 * are written in order, so anything `id`'s exchange still had to log is in by then.
 */
async function settle (gateway: RunningGateway, upstream: MockUpstream): Promise<void> {
  upstream.handle(replyJson({ ok: true }))
  const res = await request(`${gateway.baseURL}/models`, { headers: { 'session-id': 'settle' } })
  await res.body.dump()
  await logFor(gateway, 'settle')
}

/** Posts on its own connection, returning the request so the test can drop the connection. */
function postOwnConnection (gateway: RunningGateway, sessionId: string): http.ClientRequest {
  const req = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'session-id': sessionId } })
  req.on('error', () => {}) // the test destroys it on purpose
  req.end('{}')
  return req
}

t.test('a completed request writes exactly one log line describing it', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const stream = responseStream('resp_log', 'logged answer')
  upstream.handle(replySse([stream]))
  const res = await request(`${gateway.baseURL}/responses?stream=true&include[]=x`, { method: 'POST', body: '{}', headers: { 'session-id': 'log-complete' } })
  const body = Buffer.from(await res.body.arrayBuffer())
  const line = await logFor(gateway, 'log-complete')
  // t.has compares exactly: a path with its query string would not pass as '/v1/responses'.
  t.has(line, {
    level: 'info',
    method: 'POST',
    path: '/v1/responses',
    status: 200,
    session: 'log-complete',
    session_source: 'header',
    bytes_out: body.length,
    ended_by: 'complete'
  })
  t.type(line.ttfb_ms, 'number')
  t.type(line.duration_ms, 'number')
  t.equal(line.error, undefined, 'no error on a completed request')
  t.ok((line.ttfb_ms as number) >= 0 && (line.duration_ms as number) >= (line.ttfb_ms as number), 'the first byte came before the end')

  // A request without a session header: the connection's generated session, named as such.
  const plain = await request(`${gateway.baseURL}/models?limit=1`)
  await plain.body.dump()
  const generated = upstream.requests.at(-1)!.headers['session-id'] as string
  t.match(generated, UUID)
  t.has(await logFor(gateway, generated), { method: 'GET', path: '/v1/models', status: 200, session_source: 'connection', ended_by: 'complete' })

  await settle(gateway, upstream)
  t.equal(linesFor(gateway, 'log-complete').length, 1, 'exactly one line for the first request')
  t.equal(linesFor(gateway, generated).length, 1, 'exactly one line for the second request')
  t.equal(gateway.logs.filter((l) => l.msg === 'request').length, 3, 'one line per proxied request, nothing else under that name')
  t.notOk(gateway.logs.some((l) => l.msg === 'incoming request' || l.msg === 'request completed'), "Fastify's own request lines are off")
})

t.test('a client that leaves mid-stream is logged once, as ended_by client', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const first = sseEvent({ type: 'response.created', sequence_number: 0 })
  upstream.handle((_req, res) => {
    res.writeHead(200, SSE_HEADERS)
    res.write(first) // …and never ends
  })
  const client = postOwnConnection(gateway, 'log-client-left')
  const [res] = await once(client, 'response') as [http.IncomingMessage]
  let text = ''
  res.on('data', (chunk: Buffer) => { text += String(chunk) })
  while (!text.includes('\n\n')) await once(res, 'data') // the whole first event
  client.destroy()
  const line = await logFor(gateway, 'log-client-left')
  t.has(line, { status: 200, ended_by: 'client', bytes_out: Buffer.byteLength(first) })
  t.type(line.ttfb_ms, 'number', 'the response had started')
  await settle(gateway, upstream)
  t.equal(linesFor(gateway, 'log-client-left').length, 1)
})

t.test('a client that leaves before the upstream answered is logged as ended_by client, with no status', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  upstream.handle(() => {}) // never answers
  const arrived = upstream.nextRequest()
  const client = postOwnConnection(gateway, 'log-client-early')
  await arrived
  client.destroy()
  t.has(await logFor(gateway, 'log-client-early'), { status: 0, ended_by: 'client', ttfb_ms: null, bytes_out: 0 })
  await settle(gateway, upstream)
  t.equal(linesFor(gateway, 'log-client-early').length, 1)
})

/**
 * Starts a JSON POST with no session header (so its body is read to decide the session) and
 * drops the connection once the gateway has the request, halfway through its body.
 */
async function leaveMidBody (gateway: RunningGateway): Promise<void> {
  const received = new Promise<void>((resolve) => gateway.gateway.server.once('request', () => resolve()))
  const client = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } })
  client.on('error', () => {}) // destroyed on purpose
  client.write('{"model":"gpt-test","input":"half of it')
  await received
  client.destroy()
}

// Regression: the body read for the session failed with the client's abort, and the request
// ended without a line (and without a metric): a client leaving looked like no request at all.
t.test('a client that leaves while its body is read for the session is logged as ended_by client, with no status', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const other = await startMockUpstream()
  const routed = await startGateway({ UPSTREAMS: JSON.stringify([{ name: 'a', url: upstream.url }, { name: 'b', url: other.url }]) })
  t.teardown(async () => { await routed.close(); await other.close() })
  for (const [label, g] of [['one upstream', gateway], ['several upstreams', routed]] as const) {
    await leaveMidBody(g)
    const line = await g.waitForLog((l) => l.msg === 'request')
    t.has(line, { method: 'POST', path: '/v1/responses', status: 0, ended_by: 'client', ttfb_ms: null, bytes_out: 0 }, label)
    t.equal(line.session, undefined, `${label}: no session was decided`)
    const metrics = await (await fetch(`${g.origin}/metrics`)).text()
    t.match(metrics, /session_gateway_requests_total\{route="\/v1\/responses",method="POST",status_class="none",transport="http",upstream="none"\} 1\n/, `${label}: counted, with no status`)
  }
  t.equal(upstream.requests.length + other.requests.length, 0, 'nothing went upstream')
  await settle(gateway, upstream)
  t.equal(gateway.logs.filter((l) => l.msg === 'request' && l.session === undefined).length, 1, 'one line for the request that was left')
})

t.test('an upstream that breaks mid-stream is logged as ended_by upstream with an error code', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const first = sseEvent({ type: 'response.created', sequence_number: 0 })
  const broken = resetMidStream(first, SSE_HEADERS)
  upstream.handle(broken.handler)
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'log-upstream-reset' } })
  await t.rejects((async () => { for await (const _ of res.body) broken.reset() })())
  const line = await logFor(gateway, 'log-upstream-reset')
  t.has(line, { status: 200, ended_by: 'upstream', bytes_out: Buffer.byteLength(first) })
  t.match(line.error, /^[A-Z_]+$/, 'an error code')
  await settle(gateway, upstream)
  t.equal(linesFor(gateway, 'log-upstream-reset').length, 1)
})

t.test('an unreachable upstream is logged as ended_by upstream with its error code', async (t) => {
  const gateway = await startGatewayWithUnreachableUpstream(t)

  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'log-refused' } })
  t.equal(res.statusCode, 502)
  await res.body.dump()
  t.has(await logFor(gateway, 'log-refused'), { status: 502, ended_by: 'upstream', error: 'ECONNREFUSED', ttfb_ms: null, bytes_out: 0 })
})

t.test('API keys in the Authorization header or the query string never reach the log', async (t) => {
  // trace: whatever any layer logs at any level is in the text searched below.
  const { upstream, gateway } = await startGatewayWithUpstream(t, { LOG_LEVEL: 'trace' })
  const secrets = { authorization: 'Bearer sk-secret-123', 'api-key': 'sk-azure-456', 'x-api-key': 'sk-header-789' }
  const query = '?api-key=sk-q-000&key=sk-q-001'

  // Completed, refused by the gateway, not found, and torn by the client.
  for (const path of ['/v1/responses', '/v1/models/..%2fadmin', '/nope']) {
    const res = await request(gateway.origin + path + query, { method: 'POST', body: '{}', headers: { ...secrets, 'session-id': 'log-secret' } })
    await res.body.dump()
  }
  const bad = await request(`${gateway.baseURL}/responses${query}`, { method: 'POST', body: '{}', headers: { ...secrets, 'session-id': 'bad id' } })
  await bad.body.dump()
  upstream.handle(() => {})
  const arrived = upstream.nextRequest()
  const torn = http.request(`${gateway.baseURL}/responses${query}`, { method: 'POST', agent: false, headers: { ...secrets, 'session-id': 'log-secret-torn' } })
  torn.on('error', () => {})
  torn.end('{}')
  await arrived
  torn.destroy()
  await logFor(gateway, 'log-secret-torn')
  await settle(gateway, upstream)

  const text = gateway.logText()
  t.match(text, /log-secret/, 'the requests were logged')
  for (const secret of ['sk-secret-123', 'sk-azure-456', 'sk-header-789', 'sk-q-000', 'sk-q-001']) {
    t.notOk(text.includes(secret), `${secret} is not in the log`)
  }
})

t.test('a request the gateway refuses itself gets one "refused" line with its error code, and is counted', async (t) => {
  const { gateway, upstream } = await startGatewayWithUpstream(t, { OPENAI_API_KEY: 'sk-upstream-refusal', GATEWAY_API_KEYS: 'gk-right' })
  const res = await request(`${gateway.baseURL}/responses?api-key=sk-q`, { method: 'POST', body: '{}', headers: { authorization: 'Bearer gk-wrong' } })
  t.equal(res.statusCode, 401)
  await res.body.dump()
  const line = await gateway.waitForLog((l) => l.msg === 'refused')
  t.has(line, { method: 'POST', path: '/v1/responses', status: 401, ended_by: 'gateway', error: 'invalid_api_key' })
  t.equal(gateway.logs.filter((l) => l.msg === 'refused').length, 1, 'exactly one line')
  t.equal(upstream.requests.length, 0, 'nothing went upstream')
  t.notMatch(gateway.logText(), /gk-wrong|sk-q|sk-upstream-refusal/, 'no key in the log')
  const metrics = await (await fetch(`${gateway.origin}/metrics`)).text()
  t.match(metrics, /session_gateway_requests_total\{route="\/v1\/responses",method="POST",status_class="4xx",transport="http",upstream="none"\} 1\n/, 'counted as a 4xx')
  t.match(metrics, /session_gateway_active_streams\{transport="http"\} 0\n/, 'never counted as in flight')
})
