import t from 'tap'
import { request } from 'undici'
import type { MockUpstream } from '../support/mock-upstream.js'
import { startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'
import { headerOf, rawExchange, rawRequest, type RawResponse } from '../support/raw-http.js'

type Assert = Pick<typeof t, 'equal' | 'same' | 'match'>

/** The gateway answered with its own OpenAI-style JSON error. */
function assertJsonError (t: Assert, response: RawResponse, status: number, code: string, label: string): void {
  t.equal(response.status, status, `${label}: status`)
  t.match(headerOf(response, 'content-type'), /^application\/json/, `${label}: JSON`)
  let body: unknown
  try {
    body = JSON.parse(response.body.toString('utf8'))
  } catch {
    body = response.body.toString('latin1')
  }
  t.match(body, { error: { message: String, type: 'invalid_request_error', code } }, `${label}: OpenAI-style error`)
}

/** The gateway still proxies an ordinary request, and it is the only one the upstream ever saw. */
async function stillServesAndNothingLeaked (t: Assert, gateway: RunningGateway, upstream: MockUpstream): Promise<void> {
  const res = await request(`${gateway.baseURL}/models`)
  t.equal(res.statusCode, 200, 'a following normal request is served')
  t.same(await res.body.json(), { ok: true })
  t.same(upstream.requests.map((r) => r.url), ['/v1/models'], 'the upstream saw only that normal request')
}

t.test('a path with dot segments, plain or percent-encoded, is refused with invalid_path', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  for (const target of [
    '/v1/../admin',
    '/v1/%2e%2e/admin',
    '/v1/%2E%2E%2Fadmin',
    '/v1/./models',
    '/v1/responses/..%2f..%2fadmin',
    '/v1/files/%2e%2E',
    '/v1/..\\admin'
  ]) {
    const { response } = await rawExchange(gateway.port, rawRequest(`GET ${target} HTTP/1.1`, 'Host: localhost', 'Connection: close'))
    assertJsonError(t, response, 400, 'invalid_path', target)
  }
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('a path with a broken percent-escape gets an OpenAI-style 400, not Fastify\'s own', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const { response } = await rawExchange(gateway.port, rawRequest('GET /v1/models/x%ZZ HTTP/1.1', 'Host: localhost', 'Connection: close'))
  assertJsonError(t, response, 400, 'invalid_path', '%ZZ')
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('an absolute-form request target never sends the request to another host', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  // A forward-proxy-style target: the gateway must not fetch it from evil.example.
  const { response } = await rawExchange(gateway.port, rawRequest(
    'GET http://evil.example/v1/models HTTP/1.1', 'Host: evil.example', 'Connection: close'
  ))
  // The gateway is no forward proxy: refused with a 400 that says so, never a fetch.
  assertJsonError(t, response, 400, 'absolute_form_target', 'absolute-form')
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('a CONNECT tunnel request gets a 405 JSON error and never reaches the upstream', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const { response } = await rawExchange(gateway.port, rawRequest('CONNECT evil.example:443 HTTP/1.1', 'Host: evil.example:443'))
  assertJsonError(t, response, 405, 'method_not_allowed', 'CONNECT')
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('garbage instead of HTTP gets a 400 JSON error and the connection closed', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  for (const [label, bytes] of [
    ['binary noise', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a])],
    ['an unknown HTTP version', Buffer.from(rawRequest('GET /v1/models HTTP/7.3', 'Host: localhost'))],
    ['a header without a colon', Buffer.from(rawRequest('GET /v1/models HTTP/1.1', 'Host: localhost', 'this is not a header'))],
    ['a control character in a header', Buffer.from(rawRequest('GET /v1/models HTTP/1.1', 'Host: localhost', 'x-evil: a\x01b'))],
    ['a DEL character in a header', Buffer.from(rawRequest('GET /v1/models HTTP/1.1', 'Host: localhost', 'x-evil: a\x7fb'))]
  ] as const) {
    // rawExchange resolves only once the gateway has closed the connection.
    const { response } = await rawExchange(gateway.port, bytes)
    assertJsonError(t, response, 400, 'malformed_request', label)
  }
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('a request with both Content-Length and Transfer-Encoding is refused and never forwarded', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  // The classic smuggling shape: a front end and a back end could disagree on where it ends.
  const smuggled = rawRequest('GET /v1/admin HTTP/1.1', 'Host: localhost')
  const { response } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1',
    'Host: localhost',
    'Content-Type: application/json',
    `Content-Length: ${4 + smuggled.length}`,
    'Transfer-Encoding: chunked'
  ) + '0\r\n\r\n' + smuggled)
  assertJsonError(t, response, 400, 'malformed_request', 'CL + TE')
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('a header block over 16 KiB gets a 431 JSON error', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const { response } = await rawExchange(gateway.port, rawRequest(
    'GET /v1/models HTTP/1.1',
    'Host: localhost',
    ...Array.from({ length: 20 }, (_, i) => `x-filler-${i}: ${'f'.repeat(1000)}`),
    'Connection: close'
  ))
  assertJsonError(t, response, 431, 'headers_too_large', '> 16 KiB of headers')
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('regression: an Expect other than 100-continue gets a 417 JSON error, not Node\'s empty one, and never goes upstream', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  for (const [label, target] of [['a proxied route', '/v1/responses'], ['a route of the gateway\'s own', '/healthz']] as const) {
    const { response } = await rawExchange(gateway.port, rawRequest(
      `POST ${target} HTTP/1.1`,
      'Host: localhost',
      'Expect: 200-ok',
      'Content-Type: application/json',
      'Content-Length: 2',
      'Connection: close'
    ) + '{}')
    assertJsonError(t, response, 417, 'expectation_failed', label)
  }
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('regression: a body Node cannot parse, after headers that were forwarded, gets a 400 at once, not a timeout', async (t) => {
  // Node emits the request at its headers and fails on the body's bytes only later; the request
  // was already on its way upstream, which waits for the whole body. The 400 used to wait for
  // that request's own answer: a 408 at SERVER_REQUEST_TIMEOUT_MS, or the upstream's failure.
  const { upstream, gateway } = await startGatewayWithUpstream(t, { SERVER_HEADERS_TIMEOUT_MS: '1000', SERVER_REQUEST_TIMEOUT_MS: '1000' })
  for (const [label, framing, body] of [
    ['a chunk size that is no number', 'Transfer-Encoding: chunked', '2\r\n{}\r\nzz\r\n'],
    ['a transfer coding that is not chunked (no length to read)', 'Transfer-Encoding: identity', '{}']
  ] as const) {
    const { response } = await rawExchange(gateway.port, rawRequest(
      'POST /v1/responses HTTP/1.1',
      'Host: localhost',
      'Content-Type: application/json',
      `session-id: bad-body-${label.length}`,
      framing
    ) + body)
    assertJsonError(t, response, 400, 'malformed_request', label)
  }
  t.equal(upstream.requests.filter((r) => r.url === '/v1/responses').length, 0, 'no request completed upstream')
})

t.test('regression: an HTTP/1.1 request without Host gets a 400 JSON error, not Node\'s empty one; HTTP/1.0 needs none', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  for (const [label, target] of [['a proxied route', '/v1/models'], ['a route of the gateway\'s own', '/healthz']] as const) {
    const { response } = await rawExchange(gateway.port, rawRequest(`GET ${target} HTTP/1.1`, 'Connection: close'))
    assertJsonError(t, response, 400, 'missing_host', label)
  }
  const { response: upgrade } = await rawExchange(gateway.port, rawRequest(
    'GET /v1/responses HTTP/1.1', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
  ))
  assertJsonError(t, upgrade, 400, 'missing_host', 'a WebSocket upgrade')
  t.same(upstream.requests, [], 'nothing went upstream')
  // HTTP/1.0 has no Host requirement: such a request is served.
  const { response: old } = await rawExchange(gateway.port, rawRequest('GET /healthz HTTP/1.0'))
  t.equal(old.status, 200, 'an HTTP/1.0 request without Host is served')
  await stillServesAndNothingLeaked(t, gateway, upstream)
})

t.test('regression: a body in a transfer coding besides chunked gets a 501 JSON error and never goes upstream', async (t) => {
  // Node's parser decodes the chunks only: the gzip bytes inside them went upstream as if they were the JSON body.
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  for (const coding of ['gzip, chunked', 'deflate,chunked', 'gzip , Chunked']) {
    const { response } = await rawExchange(gateway.port, rawRequest(
      'POST /v1/responses HTTP/1.1', 'Host: localhost', `Transfer-Encoding: ${coding}`, 'Content-Type: application/json', 'Connection: close'
    ) + '2\r\n{}\r\n0\r\n\r\n')
    t.equal(response.status, 501, `${coding}: status`)
    t.match(JSON.parse(response.body.toString('utf8')), { error: { type: 'invalid_request_error', code: 'unsupported_transfer_coding', message: String } }, `${coding}: OpenAI-style error`)
  }
  // Not ending in chunked: no length to read the body by, a 400 (whether Node's parser or the gateway says so, by Node's version).
  for (const coding of ['gzip', 'chunked, gzip', 'identity']) {
    const { response } = await rawExchange(gateway.port, rawRequest(
      'POST /v1/responses HTTP/1.1', 'Host: localhost', `Transfer-Encoding: ${coding}`, 'Content-Type: application/json'
    ) + '2\r\n{}\r\n0\r\n\r\n')
    assertJsonError(t, response, 400, 'malformed_request', coding)
  }
  // Plain chunked, in any case, still goes through.
  const { response } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1', 'Host: localhost', 'Transfer-Encoding: Chunked', 'Content-Type: application/json', 'Connection: close'
  ) + '2\r\n{}\r\n0\r\n\r\n')
  t.equal(response.status, 200, 'a chunked body is forwarded')
  t.same(upstream.requests.map((r) => r.body.toString()), ['{}'], 'only the chunked body reached the upstream')
})

t.test('regression: an upload that waits for 100 Continue and is refused gets the refusal instead, and is never sent', async (t) => {
  // Node used to send 100 Continue before the gateway looked at the request: the client then
  // uploaded its whole body only to be told 401 or 413.
  const { upstream, gateway } = await startGatewayWithUpstream(t, { GATEWAY_API_KEYS: 'sk-gateway-1', OPENAI_API_KEY: 'sk-upstream', BODY_LIMIT: '2048' })
  for (const [label, headers, status, code] of [
    ['a wrong key', ['Authorization: Bearer sk-wrong', 'Content-Length: 20'], 401, 'invalid_api_key'],
    ['a body over BODY_LIMIT', ['Authorization: Bearer sk-gateway-1', 'Content-Length: 5000'], 413, 'body_too_large']
  ] as const) {
    // Headers only: the body would follow a 100 Continue. The exchange ends only if the gateway closes the connection.
    const { responses, response } = await rawExchange(gateway.port, rawRequest(
      'POST /v1/responses HTTP/1.1', 'Host: localhost', 'Expect: 100-continue', 'Content-Type: application/json', ...headers
    ))
    t.same(responses.map((r) => r.status), [status], `${label}: the refusal is the only answer, no 100 Continue before it`)
    t.equal(response.status, status, `${label}: status`)
    t.match(JSON.parse(response.body.toString('utf8')), { error: { code } }, `${label}: its error`)
    t.equal(headerOf(response, 'connection')?.toLowerCase(), 'close', `${label}: the connection closes (the body was never read)`)
  }
  t.same(upstream.requests, [], 'nothing went upstream')
})
