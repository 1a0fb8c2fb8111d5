import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { Client, request } from 'undici'
import { startGateway, startGatewayWithUpstream } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { headerOf, rawExchange, rawRequest } from '../support/raw-http.js'

/** A JSON body of exactly `bytes` bytes. */
function jsonOf (bytes: number): string {
  const head = '{"model":"gpt-test","input":"'
  return head + 'x'.repeat(bytes - head.length - 2) + '"}'
}

const BIG = jsonOf(4096)

/** The same bytes as a stream of pieces: undici sends it chunked, with no content-length. */
function chunked (text: string): Readable {
  const pieces: string[] = []
  for (let at = 0; at < text.length; at += 1000) pieces.push(text.slice(at, at + 1000))
  return Readable.from(pieces)
}

async function answer (res: Awaited<ReturnType<typeof request>>): Promise<{ status: number, type: string, body: unknown }> {
  return { status: res.statusCode, type: String(res.headers['content-type']), body: await res.body.json() }
}

t.test('a body over BODY_LIMIT with a content-length is a 413 body_too_large and never goes upstream', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { BODY_LIMIT: '2048' })
  for (const [label, headers] of [
    ['without a session-id', {}],
    ['with a session-id (the body is never read for the session)', { 'session-id': 's-big' }],
    ['not JSON', { 'content-type': 'application/octet-stream' }]
  ] as const) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: BIG, headers: { 'content-type': 'application/json', ...headers } })
    const { status, type, body } = await answer(res)
    t.equal(status, 413, label)
    t.match(type, /^application\/json/)
    t.match(body, { error: { message: /2048 bytes/, type: 'invalid_request_error', code: 'body_too_large' } })
  }
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')

  const small = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: jsonOf(2048), headers: { 'content-type': 'application/json' } })
  t.equal(small.statusCode, 200, 'a body of exactly the limit passes')
  await small.body.dump()
  t.equal(upstream.requests[0]?.body.length, 2048)
})

t.test('a chunked JSON body over BODY_LIMIT, read for its session, is a 413', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { BODY_LIMIT: '2048' })
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: chunked(BIG), headers: { 'content-type': 'application/json' } })
  const { status, body } = await answer(res)
  t.equal(status, 413)
  t.match(body, { error: { code: 'body_too_large' } })
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')

  const small = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: chunked(jsonOf(2000)), headers: { 'content-type': 'application/json' } })
  t.equal(small.statusCode, 200, 'a chunked body under the limit passes')
  await small.body.dump()
  t.equal(upstream.requests[0]?.body.toString(), jsonOf(2000))
})

t.test('a header block over MAX_HEADER_BYTES is a 431, OpenAI-style', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { MAX_HEADER_BYTES: '4096' })
  const { response } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1', 'Host: localhost', `x-big: ${'a'.repeat(6 * 1024)}`, 'Content-Type: application/json', 'Content-Length: 2', 'Connection: close'
  ) + '{}')
  t.equal(response.status, 431)
  t.match(headerOf(response, 'content-type'), /^application\/json/)
  t.match(JSON.parse(response.body.toString()), { error: { message: String, type: 'invalid_request_error', code: 'headers_too_large' } })
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')

  const fits = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'x-big': 'a'.repeat(2048) } })
  t.equal(fits.statusCode, 200, 'a header block under the limit passes')
  await fits.body.dump()
})

t.test('RATE_LIMIT_PER_MINUTE limits each client key, with a 429 and retry-after', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { RATE_LIMIT_PER_MINUTE: '2' })
  const send = async (key: string): Promise<Awaited<ReturnType<typeof request>>> =>
    await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } })

  for (let i = 1; i <= 2; i++) {
    const res = await send('sk-client-one')
    t.equal(res.statusCode, 200, `request ${i} of the minute passes`)
    await res.body.dump()
  }
  const limited = await send('sk-client-one')
  const retryAfter = Number(limited.headers['retry-after'])
  const { status, type, body } = await answer(limited)
  t.equal(status, 429, 'the third is refused')
  t.match(type, /^application\/json/)
  t.match(body, { error: { message: String, type: 'rate_limit_error', code: 'rate_limit_exceeded' } })
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after is whole seconds within the minute (${String(limited.headers['retry-after'])})`)
  t.notOk(JSON.stringify(body).includes('sk-client-one'), 'the refusal does not echo the key')
  t.equal(upstream.requests.length, 2, 'the refused request never went upstream')

  const other = await send('sk-client-two')
  t.equal(other.statusCode, 200, 'another key has its own allowance')
  await other.body.dump()

  for (let i = 0; i < 5; i++) {
    const health = await request(`${gateway.origin}/healthz`)
    t.equal(health.statusCode, 200, `/healthz ${i + 1} is never limited`)
    await health.body.dump()
  }
  t.notOk(gateway.logText().includes('sk-client-'), 'no client key in the log')
})

t.test('with gateway keys, a refused key counts against the address: made-up keys neither escape the limit nor guess unbounded', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { RATE_LIMIT_PER_MINUTE: '2', OPENAI_API_KEY: 'sk-managed-upstream', GATEWAY_API_KEYS: 'gw-good-key' })
  const send = async (key: string): Promise<number> => {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } })
    await res.body.dump()
    return res.statusCode
  }
  t.same([await send('made-up-1'), await send('made-up-2'), await send('made-up-3'), await send('made-up-4')], [401, 401, 429, 429], 'the third refused key from one address is rate limited')
  t.same([await send('gw-good-key'), await send('gw-good-key'), await send('gw-good-key')], [200, 200, 429], 'a valid key has its own allowance')
  t.equal(upstream.requests.length, 2, 'only the valid key reached the upstream')
})

t.test('regression: managed mode without gateway keys limits per address: made-up keys, which nothing checks, do not escape the limit', async (t) => {
  // On loopback (or with ALLOW_UNAUTHENTICATED) no key is checked, by the gateway or the upstream (it
  // gets the managed key): each made-up key had an allowance of its own, all paid by the managed key.
  const { upstream, gateway } = await startGatewayWithUpstream(t, { RATE_LIMIT_PER_MINUTE: '2', OPENAI_API_KEY: 'sk-managed-upstream' })
  const send = async (key: string): Promise<number> => {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } })
    await res.body.dump()
    return res.statusCode
  }
  t.same([await send('made-up-1'), await send('made-up-2'), await send('made-up-3')], [200, 200, 429], 'the third request from one address is limited, whatever key it made up')
  t.equal(upstream.requests.length, 2, 'the limited request never went upstream')
})

t.test('without a key, requests are limited per client address', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { RATE_LIMIT_PER_MINUTE: '1' })
  const first = await request(`${gateway.baseURL}/models`)
  t.equal(first.statusCode, 200)
  await first.body.dump()
  const second = await request(`${gateway.baseURL}/models`)
  t.equal(second.statusCode, 429)
  await second.body.dump()
})

t.test('a chunked body over BODY_LIMIT that is not read for its session is refused too', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { BODY_LIMIT: '2048' })
  for (const [label, headers] of [
    ['JSON with a session-id', { 'content-type': 'application/json', 'session-id': 's-chunked' }],
    ['not JSON', { 'content-type': 'application/octet-stream' }]
  ] as const) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: chunked(BIG), headers }).catch(() => undefined)
    t.equal(res?.statusCode, 413, label)
    await res?.body.dump()
  }
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
})

// A chunked body cut at the limit while it streams upstream ends after it went upstream, so its
// line is a `request` line, not a `refused` one; it carries the same error code all the same.
t.test('a chunked body cut at BODY_LIMIT while streaming upstream is logged with error body_too_large, as a refused one is', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { BODY_LIMIT: '2048' })
  const streamed = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: chunked(BIG), headers: { 'content-type': 'application/json', 'session-id': 's-cut' } })
  t.equal(streamed.statusCode, 413)
  await streamed.body.dump()
  t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 's-cut'), { status: 413, ended_by: 'gateway', error: 'body_too_large' }, 'cut while streaming')
  const declared = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: BIG, headers: { 'content-type': 'application/json', 'session-id': 's-declared' } })
  t.equal(declared.statusCode, 413)
  await declared.body.dump()
  t.has(await gateway.waitForLog((l) => l.msg === 'refused'), { status: 413, ended_by: 'gateway', error: 'body_too_large' }, 'refused by its content-length')
})

// With several upstreams a chunked body past UPSTREAM_REPLAY_BODY_BYTES goes up in two parts (what
// was read to be replayed, then the rest as it comes: proxy/replay-body.ts); cut at the limit in
// the second, its line says why the gateway stopped it all the same.
t.test('several upstreams: a chunked body cut at BODY_LIMIT after its replayable head went upstream is logged with error body_too_large', async (t) => {
  const [a, b] = [await startMockUpstream(), await startMockUpstream()]
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify([{ name: 'a', url: a.url }, { name: 'b', url: b.url }]), BODY_LIMIT: '2048', UPSTREAM_REPLAY_BODY_BYTES: '1000' })
  t.teardown(async () => { await gateway.close(); await a.close(); await b.close() })
  for (const type of ['application/json', 'application/octet-stream']) {
    const session = `s-cut-routed-${type}`
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: chunked(BIG), headers: { 'content-type': type, 'session-id': session } })
    t.equal(res.statusCode, 413, type)
    await res.body.dump()
    t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === session), { status: 413, ended_by: 'gateway', error: 'body_too_large' }, `${type}: cut while streaming`)
  }
  t.equal(a.requests.length + b.requests.length, 0, 'no upstream took the cut body as a whole request')
})

// A client may stop sending a body once it has the answer: the 413 then closes the connection,
// or the gateway would read the client's next request as the rest of the body and hang it.
t.test('a chunked body cut at BODY_LIMIT closes its connection: the client\'s next request on a new one is answered', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { BODY_LIMIT: '2048' })
  const client = new Client(gateway.origin, { pipelining: 1 })
  t.teardown(async () => { await client.destroy() })
  const huge = (): Readable => Readable.from((function * () { for (let i = 0; i < 1000; i++) yield Buffer.alloc(1000, 0x78) })())
  for (const headers of [{ 'content-type': 'application/json' }, { 'content-type': 'application/json', 'session-id': 's-cut-close' }, { 'content-type': 'application/octet-stream' }]) {
    // Still sending when the 413 comes: the client reads it (the gateway lingers, http/lingering-close.ts).
    const res = await client.request({ path: '/v1/responses', method: 'POST', body: huge(), headers })
    t.equal(res.statusCode, 413)
    t.equal(res.headers.connection, 'close', `${headers['content-type']}${'session-id' in headers ? ', session-id' : ''}: the connection closes after the 413`)
    await res.body.dump()
  }
  const next = await client.request({ path: '/v1/responses', method: 'POST', body: jsonOf(100), headers: { 'content-type': 'application/json' } })
  t.equal(next.statusCode, 200, 'the next request is answered')
  await next.body.dump()
})

// Whatever stops the gateway reading a body before it has all arrived — an upstream that answers
// early, or one that fails mid-upload — the client's next request is answered, never left behind
// an unread body; the gateway's own 502 closes the connection (an early answer is relayed as is).
t.test('an upstream that answers or fails before the body has all arrived: the next request is answered, and a 502 closes the connection', async (t) => {
  let failNext = false
  const upstream = createServer((req, res) => {
    if (req.url?.includes('/models') === true) return res.end('{"object":"list","data":[]}')
    if (failNext) {
      req.once('data', () => req.socket.destroy()) // reset mid-upload
      return
    }
    // Answers at once, reading nothing of the body.
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end('{"error":{"message":"refused early","type":"invalid_request_error","code":null}}')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close(); upstream.closeAllConnections() })
  const { port } = upstream.address() as AddressInfo
  const gateway = await startGateway({ UPSTREAM_URL: `http://127.0.0.1:${port}/v1` })
  t.teardown(gateway.close)
  const client = new Client(gateway.origin, { pipelining: 1 })
  t.teardown(async () => { await client.destroy() })
  // A body that keeps coming a while: its last part is sent only after the answer could be in.
  const slowBody = (): Readable => Readable.from((async function * () {
    for (let i = 0; i < 200; i++) {
      yield Buffer.alloc(4096, 0x78)
      await new Promise((resolve) => setImmediate(resolve))
    }
  })())
  for (const [label, fail, status] of [['answered early', false, 400], ['reset mid-upload', true, 502]] as const) {
    failNext = fail
    const res = await client.request({ path: '/v1/files', method: 'POST', body: slowBody(), headers: { 'content-type': 'application/octet-stream', 'session-id': `s-${status}` } })
    t.equal(res.statusCode, status, label)
    if (fail) t.equal(res.headers.connection, 'close', `${label}: the connection closes after the 502`)
    await res.body.dump()
    const next = await client.request({ path: '/v1/models', method: 'GET' })
    t.equal(next.statusCode, 200, `${label}: the next request is answered`)
    await next.body.dump()
  }
})
