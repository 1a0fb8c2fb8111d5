import http from 'node:http'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { request } from 'undici'
import { replyJson, startMockUpstream, type MockUpstream, type UpstreamHandler } from '../support/mock-upstream.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { headerOf, headersNamed, rawExchange, rawRequest } from '../support/raw-http.js'

/** What `start` needs of a test: somewhere to register cleanup. */
interface Test { teardown: (fn: () => Promise<void>) => void }

/** A mock upstream and a gateway in front of it (`UPSTREAM_URL` = upstream origin + `upstreamPath`), both closed at teardown. */
async function start (t: Test, { upstreamPath = '/v1', env = {}, handler }: { upstreamPath?: string, env?: Record<string, string>, handler?: UpstreamHandler } = {}): Promise<{ upstream: MockUpstream, gateway: RunningGateway }> {
  const upstream = await startMockUpstream(handler)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.origin + upstreamPath, ...env })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  return { upstream, gateway }
}

t.test('every method and path under /v1 reaches the upstream at the same path, query string kept', async (t) => {
  const { upstream, gateway } = await start(t)
  const cases = [
    { method: 'GET', path: '/v1/models?limit=2&order=desc&q=a%20b%2Fc' },
    { method: 'POST', path: '/v1/chat/completions', body: '{"model":"gpt-test","messages":[]}' },
    { method: 'GET', path: '/v1/responses/resp_123?include[]=file_search_call.results' },
    { method: 'POST', path: '/v1/responses/resp_123/cancel' },
    { method: 'DELETE', path: '/v1/responses/resp_123' },
    { method: 'PUT', path: '/v1/vector_stores/vs_1/files/file_2', body: '{}' },
    { method: 'PATCH', path: '/v1/organization/projects/p1', body: '{"name":"x"}' }
  ] as const
  for (const c of cases) {
    const body = 'body' in c ? c.body : undefined
    const res = await request(gateway.origin + c.path, { method: c.method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' } })
    t.equal(res.statusCode, 200, `${c.method} ${c.path}: upstream's status`)
    t.same(await res.body.json(), { ok: true }, `${c.method} ${c.path}: upstream's body`)
    const seen = upstream.requests.at(-1)!
    t.equal(seen.method, c.method, `${c.method} ${c.path}: method kept`)
    t.equal(seen.url, c.path, `${c.method} ${c.path}: path and query kept`)
    t.equal(seen.body.toString(), body ?? '', `${c.method} ${c.path}: body kept`)
  }
  t.equal(upstream.requests.length, cases.length, 'one upstream request per client request')
})

t.test('a multipart file upload with every byte value arrives byte-identical', async (t) => {
  const { upstream, gateway } = await start(t)
  const file = Buffer.alloc(4 * 256 + 3)
  for (let i = 0; i < file.length; i++) file[i] = i % 256
  const boundary = '----gateway-test-7d1f'
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  const contentType = `multipart/form-data; boundary=${boundary}`
  const res = await request(`${gateway.baseURL}/files`, { method: 'POST', body, headers: { 'content-type': contentType } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const seen = upstream.requests[0]!
  t.equal(seen.url, '/v1/files')
  t.equal(seen.headers['content-type'], contentType, 'content-type and boundary kept')
  t.equal(seen.headers['content-length'], String(body.length), 'content-length kept')
  t.ok(seen.body.equals(body), 'body byte-identical, 0x00-0xff included')
})

t.test('an UPSTREAM_URL with a path prefix puts that prefix in front of the forwarded path', async (t) => {
  const { upstream, gateway } = await start(t, { upstreamPath: '/openai/v1' })
  const res = await request(`${gateway.baseURL}/models?limit=1`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(upstream.requests[0]!.url, '/openai/v1/models?limit=1')
})

t.test("an UPSTREAM_URL query (Azure's api-version) is sent on every request, merged with the client's query", async (t) => {
  const { upstream, gateway } = await start(t, { upstreamPath: '/openai/v1?api-version=2025-01-01' })
  for (const [client, expected] of [
    ['/v1/responses', '/openai/v1/responses?api-version=2025-01-01'],
    ['/v1/responses/resp_1?include[]=x&stream=true', '/openai/v1/responses/resp_1?include[]=x&stream=true&api-version=2025-01-01']
  ] as const) {
    const res = await request(gateway.origin + client)
    t.equal(res.statusCode, 200)
    await res.body.dump()
    t.equal(upstream.requests.at(-1)!.url, expected, client)
  }
})

t.test("the upstream's status, headers (repeated set-cookie included) and body come back unchanged", async (t) => {
  const body = '{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}'
  const { gateway } = await start(t, {
    handler: (_req, res) => {
      res.writeHead(429, 'Too Many Requests', [
        'Content-Type', 'application/json',
        'Content-Length', String(Buffer.byteLength(body)),
        'x-request-id', 'req_abc123',
        'openai-processing-ms', '42',
        'x-ratelimit-remaining-requests', '0',
        'retry-after', '7',
        'Set-Cookie', '__cf_bm=one; path=/; HttpOnly',
        'Set-Cookie', '_cfuvid=two; path=/; Secure'
      ])
      res.end(body)
    }
  })
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}' })
  t.equal(res.statusCode, 429)
  t.equal(res.headers['content-type'], 'application/json')
  t.equal(res.headers['content-length'], String(Buffer.byteLength(body)))
  t.equal(res.headers['x-request-id'], 'req_abc123')
  t.equal(res.headers['openai-processing-ms'], '42')
  t.equal(res.headers['x-ratelimit-remaining-requests'], '0')
  t.equal(res.headers['retry-after'], '7')
  t.same(res.headers['set-cookie'], ['__cf_bm=one; path=/; HttpOnly', '_cfuvid=two; path=/; Secure'], 'both set-cookie headers, in order')
  t.equal(await res.body.text(), body)
})

t.test('a chunked request body arrives whole', async (t) => {
  const { upstream, gateway } = await start(t)
  const pieces = ['{"model":', '"gpt-test",', '"input":"héllo"', '}']
  const chunked = pieces.map((piece) => {
    const bytes = Buffer.from(piece)
    return `${bytes.length.toString(16)}\r\n${bytes.toString('latin1')}\r\n`
  }).join('') + '0\r\n\r\n'
  const { response } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1',
    'Host: localhost',
    'Content-Type: application/json',
    'Transfer-Encoding: chunked',
    'Connection: close'
  ) + chunked)
  t.equal(response.status, 200)
  t.equal(upstream.requests[0]!.body.toString(), pieces.join(''))
})

t.test('the authorization header reaches the upstream exactly as sent', async (t) => {
  const { upstream, gateway } = await start(t)
  const authorization = 'Bearer sk-proj-AbC_123.xyz-=='
  const res = await request(`${gateway.baseURL}/models`, { headers: { authorization, 'openai-organization': 'org-1', 'x-custom': 'kept' } })
  await res.body.dump()
  const seen = upstream.requests[0]!
  t.equal(seen.headers.authorization, authorization)
  t.equal(seen.headers['openai-organization'], 'org-1')
  t.equal(seen.headers['x-custom'], 'kept')
})

t.test('hop-by-hop request headers, and those the client names in Connection, do not reach the upstream', async (t) => {
  const { upstream, gateway } = await start(t)
  const { response } = await rawExchange(gateway.port, rawRequest(
    'GET /v1/models HTTP/1.1',
    'Host: localhost',
    'Connection: close, X-Drop-Me',
    'X-Drop-Me: 1',
    'Keep-Alive: timeout=5, max=100',
    'TE: trailers',
    'Upgrade: websocket',
    'Proxy-Connection: keep-alive',
    'Proxy-Authorization: Basic c2VjcmV0',
    'Trailer: x-checksum',
    'X-Keep-Me: yes'
  ))
  t.equal(response.status, 200)
  const seen = upstream.requests[0]!
  for (const name of ['x-drop-me', 'keep-alive', 'te', 'upgrade', 'proxy-connection', 'proxy-authorization', 'trailer']) {
    t.equal(seen.headers[name], undefined, `${name} not forwarded`)
  }
  t.notMatch(seen.headers.connection ?? '', /x-drop-me/i, "the upstream connection's own header does not echo the client's")
  t.equal(seen.headers['x-keep-me'], 'yes', 'end-to-end headers are kept')
})

t.test('regression: every Connection header line is honoured, not only the last', async (t) => {
  const { upstream, gateway } = await start(t, {
    handler: (_req, res) => {
      res.writeHead(200, ['Content-Type', 'application/json', 'Connection', 'x-secret-a', 'Connection', 'x-secret-b', 'X-Secret-A', 'a', 'X-Secret-B', 'b', 'Content-Length', '2'])
      res.end('{}')
    }
  })
  const { response } = await rawExchange(gateway.port, rawRequest(
    'GET /v1/models HTTP/1.1',
    'Host: localhost',
    'Connection: x-drop-a',
    'Connection: x-drop-b, close',
    'X-Drop-A: 1',
    'X-Drop-B: 1'
  ))
  t.equal(response.status, 200)
  const seen = upstream.requests[0]!
  t.equal(seen.headers['x-drop-a'], undefined, 'named by the first Connection line: not forwarded')
  t.equal(seen.headers['x-drop-b'], undefined, 'named by the second Connection line: not forwarded')
  t.same(headersNamed(response, 'x-secret-a'), [], "named by the upstream's first Connection line: not relayed")
  t.same(headersNamed(response, 'x-secret-b'), [], "named by the upstream's second Connection line: not relayed")
})

t.test('hop-by-hop response headers, and those the upstream names in Connection, do not reach the client', async (t) => {
  const { gateway } = await start(t, {
    handler: (_req, res) => {
      res.writeHead(200, [
        'Content-Type', 'application/json',
        'Connection', 'keep-alive, X-Secret',
        'X-Secret', 'internal-routing-token',
        'Keep-Alive', 'timeout=999, max=7',
        'Proxy-Authenticate', 'Basic realm="upstream"',
        'X-Visible', 'yes',
        'Content-Length', '2'
      ])
      res.end('{}')
    }
  })
  // Raw, to see every header line the gateway writes.
  const { response, bytes } = await rawExchange(gateway.port, rawRequest('GET /v1/models HTTP/1.1', 'Host: localhost', 'Connection: close'))
  t.equal(response.status, 200)
  t.same(headersNamed(response, 'x-secret'), [], 'x-secret not relayed')
  t.notMatch(bytes.toString('latin1'), /internal-routing-token/, 'its value appears nowhere')
  t.notOk(headersNamed(response, 'keep-alive').some((v) => v.includes('999')), "the upstream's keep-alive not relayed")
  t.same(headersNamed(response, 'proxy-authenticate'), [], 'proxy-authenticate not relayed')
  t.same(headersNamed(response, 'connection'), ['close'], "the client's connection is the gateway's own")
  t.equal(headerOf(response, 'x-visible'), 'yes', 'end-to-end headers are relayed')
  t.equal(response.body.toString(), '{}')
})

t.test('a gzip response reaches the client as the very bytes the upstream sent', async (t) => {
  const json = Buffer.from(JSON.stringify({ object: 'list', data: Array.from({ length: 50 }, (_, i) => ({ id: `model-${i}`, object: 'model' })) }))
  const gzipped = gzipSync(json)
  const { gateway } = await start(t, {
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipped.length })
      res.end(gzipped)
    }
  })
  // undici's request() does not decompress, so these are the bytes on the wire.
  const res = await request(`${gateway.baseURL}/models`, { headers: { 'accept-encoding': 'gzip' } })
  const received = Buffer.from(await res.body.arrayBuffer())
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-encoding'], 'gzip')
  t.equal(res.headers['content-length'], String(gzipped.length), 'content-length is the compressed byte count')
  t.ok(received.equals(gzipped), 'body is the gzip bytes, not re-encoded or decompressed')
})

t.test('an Expect: 100-continue upload gets its 100 Continue and its body forwarded', async (t) => {
  const { upstream, gateway } = await start(t)
  const body = JSON.stringify({ model: 'gpt-test', input: 'x'.repeat(4096) })
  const response = await new Promise<{ status: number, text: string, sawContinue: boolean }>((resolve, reject) => {
    let sawContinue = false
    const req = http.request(`${gateway.baseURL}/responses`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' }
    })
    // The body is only sent once the gateway says to go on.
    req.on('continue', () => { sawContinue = true; req.end(body) })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, sawContinue }))
    })
    req.on('error', reject)
    req.flushHeaders()
  })
  t.ok(response.sawContinue, 'the client got 100 Continue')
  t.equal(response.status, 200)
  t.equal(response.text, '{"ok":true}')
  t.equal(upstream.requests[0]!.body.toString(), body, 'the body arrived upstream')
  t.equal(upstream.requests[0]!.headers.expect, undefined, 'expect is answered by the gateway, not forwarded')
})

t.test('/healthz and /readyz answer without touching the upstream', async (t) => {
  const { upstream, gateway } = await start(t)
  const health = await request(`${gateway.origin}/healthz`)
  t.equal(health.statusCode, 200)
  t.match(await health.body.json(), { status: 'ok' })
  const ready = await request(`${gateway.origin}/readyz`)
  t.equal(ready.statusCode, 200)
  t.match(await ready.body.json(), { status: 'ready' })
  t.equal(upstream.requests.length, 0)
})

t.test('a path outside /v1 gets a 404 OpenAI-style error and is not forwarded', async (t) => {
  const { upstream, gateway } = await start(t, { handler: replyJson({ forwarded: true }) })
  for (const [method, path] of [['GET', '/admin'], ['POST', '/v2/responses'], ['GET', '/v1x/models'], ['GET', '/']] as const) {
    const res = await request(gateway.origin + path, { method })
    t.equal(res.statusCode, 404, `${method} ${path}`)
    t.match(res.headers['content-type'], /^application\/json/)
    const body = await res.body.json() as { error: Record<string, unknown> }
    t.match(body, { error: { message: String, type: 'invalid_request_error', code: 'not_found' } }, `${method} ${path}: OpenAI-style error`)
  }
  t.equal(upstream.requests.length, 0)
})
