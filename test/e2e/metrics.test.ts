import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { replyJson, replySse, responseStream, sseEvent, startMockUpstream } from '../support/mock-upstream.js'
import { startGateway, startGatewayWithUpstream } from '../support/gateway.js'
import { headerOf, rawExchange, rawRequest } from '../support/raw-http.js'

/** One sample line of the Prometheus text format. */
interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses Prometheus text exposition: every non-comment line into name, labels and value. */
function parseMetrics (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line)
    if (match === null) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name!] = value!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/** Samples of `name` whose labels include every one of `labels`. */
function samplesOf (samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

/** The value of the one sample of `name` with exactly `labels`; undefined when absent. */
function valueOf (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && sameLabels(s.labels, labels))
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} appears ${found.length} times`)
  return found[0]?.value
}

function sameLabels (a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k])
}

async function scrape (url: string): Promise<{ status: number, contentType: string, text: string }> {
  const res = await request(url)
  return { status: res.statusCode, contentType: String(res.headers['content-type']), text: await res.body.text() }
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }

t.test('/metrics counts known traffic exactly, and never names a session', async (t) => {
  const upstream = await startMockUpstream()
  const { port: upstreamPort } = upstream.server.address() as AddressInfo
  // The upstream starts down: its port is closed, so the first request cannot connect. (Done
  // before the gateway has any pooled connection, so the failure is a connect, never a reset.)
  await new Promise<void>((resolve) => upstream.server.close(() => resolve()))
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  t.teardown(async () => { await gateway.close(); await upstream.close() })

  // 1. Unreachable upstream: a 502 from the gateway itself, no upstream headers.
  const refused = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'session-id': 's-metrics-refused' } })
  t.equal(refused.statusCode, 502)
  t.match(await refused.body.json(), { error: { code: 'upstream_unreachable' } })
  await new Promise<void>((resolve) => upstream.server.listen(upstreamPort, '127.0.0.1', resolve))

  // 2-4. Three streamed responses, each with the default usage (120 / 100 cached / 7 / 3 reasoning).
  for (let i = 1; i <= 3; i++) {
    upstream.handle(replySse([responseStream(`resp_metrics_${i}`, `answer ${i}`)]))
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json', 'session-id': `s-metrics-${i}` } })
    t.equal(res.statusCode, 200)
    t.match(await res.body.text(), /response\.completed/)
  }

  // 5. A model list: a GET, no usage. Its session comes from the connection (no header).
  upstream.handle(replyJson({ object: 'list', data: [] }))
  const models = await request(`${gateway.baseURL}/models`)
  t.equal(models.statusCode, 200)
  await models.body.dump()

  // 6. A client that leaves mid-stream.
  upstream.handle((_req, res) => {
    res.writeHead(200, SSE_HEADERS)
    res.write(sseEvent({ type: 'response.created', sequence_number: 0, response: { id: 'resp_metrics_abort' } })) // …and never ends
  })
  const arrived = upstream.nextRequest()
  const client = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'session-id': 's-metrics-abort' } })
  client.on('error', () => {}) // destroyed on purpose
  client.end('{"stream":true}')
  const [streaming] = await once(client, 'response') as [http.IncomingMessage]
  t.equal(streaming.statusCode, 200)
  await once(streaming, 'data')
  const seen = await arrived
  client.destroy()
  await seen.closed
  await gateway.waitForLog((line) => line.msg === 'request' && line.session === 's-metrics-abort')

  // 7. An upstream 500.
  upstream.handle(replyJson({ error: { message: 'boom', type: 'server_error' } }, 500))
  const failed = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'session-id': 's-metrics-500' } })
  t.equal(failed.statusCode, 500)
  await failed.body.dump()

  const { status, contentType, text } = await scrape(`${gateway.origin}/metrics`)
  t.equal(status, 200)
  t.match(contentType, /^text\/plain; version=0\.0\.4/)
  const samples = parseMetrics(text)

  const requests = samplesOf(samples, 'session_gateway_requests_total')
  t.same(requests.map((s) => ({ ...s.labels, count: s.value })).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
    { route: '/v1/models', method: 'GET', status_class: '2xx', transport: 'http', upstream: 'default', count: 1 },
    // three completed streams and the one the client left (it had its 200)
    { route: '/v1/responses', method: 'POST', status_class: '2xx', transport: 'http', upstream: 'default', count: 4 },
    // the upstream's 500 and the gateway's own 502
    { route: '/v1/responses', method: 'POST', status_class: '5xx', transport: 'http', upstream: 'default', count: 2 }
  ], 'requests_total by route, method, status class and transport')

  t.equal(valueOf(samples, 'session_gateway_active_streams', { transport: 'http' }), 0, 'no stream is left counted as active')
  t.equal(valueOf(samples, 'session_gateway_upstream_ttfb_seconds_count', { transport: 'http', upstream: 'default' }), 6, 'ttfb observed for every request that got upstream headers')
  t.equal(valueOf(samples, 'session_gateway_request_duration_seconds_count', { transport: 'http' }), 7, 'duration observed for every request')
  t.equal(valueOf(samples, 'session_gateway_upstream_errors_total', { kind: 'connect', upstream: 'default' }), 1)
  t.equal(valueOf(samples, 'session_gateway_upstream_errors_total', { kind: 'status', upstream: 'default' }), 1)
  for (const kind of ['timeout', 'reset', 'protocol']) t.equal(valueOf(samples, 'session_gateway_upstream_errors_total', { kind, upstream: 'default' }), 0, `no ${kind} errors`)
  t.equal(valueOf(samples, 'session_gateway_client_aborts_total', { transport: 'http' }), 1)
  t.same(Object.fromEntries(samplesOf(samples, 'session_gateway_tokens_total').map((s) => [s.labels.type, s.value])),
    { input: 360, cached: 300, output: 21, reasoning: 9 }, 'tokens_total sums the three completed streams')
  t.ok((valueOf(samples, 'session_gateway_sessions') ?? 0) > 0, 'sessions gauge counts the bindings learned')
  t.ok(samplesOf(samples, 'session_gateway_process_cpu_seconds_total').length > 0, 'process cpu seconds present')
  t.ok(samplesOf(samples, 'session_gateway_nodejs_eventloop_lag_seconds').length > 0, 'event loop lag present')

  // Session ids: the ones the upstream was sent, and the ones only the log knows (the refused one).
  const sessionIds = new Set<string>()
  for (const req of upstream.requests) sessionIds.add(String(req.headers['session-id']))
  for (const line of gateway.logs) if (line.msg === 'request') sessionIds.add(String(line.session))
  t.equal(sessionIds.size, 7, 'every exchange had its own session (five named, one per connection for the rest)')
  for (const id of sessionIds) {
    t.notOk(text.includes(id), `session id ${id} appears nowhere in /metrics`)
    t.notOk(samples.some((s) => Object.values(s.labels).includes(id)), `no label value is ${id}`)
  }
})

t.test('active_streams is 1 while a stream is held open, and 0 once it ends', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const stream = responseStream('resp_held', 'held answer')
  const split = stream.indexOf('\n\n') + 2
  upstream.handle(replySse([stream.slice(0, split), stream.slice(split)], async () => await released))

  const active = async (): Promise<number | undefined> =>
    valueOf(parseMetrics((await scrape(`${gateway.origin}/metrics`)).text), 'session_gateway_active_streams', { transport: 'http' })

  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 200)
  const reader = res.body[Symbol.asyncIterator]()
  let received = ''
  while (!received.includes('\n\n')) received += String((await reader.next()).value)
  t.equal(received, stream.slice(0, split), 'the first event arrived; the rest is held')
  t.equal(await active(), 1, 'one stream in flight')

  release()
  for (let next = await reader.next(); next.done !== true; next = await reader.next()) received += String(next.value)
  t.equal(received, stream)
  t.equal(await active(), 0, 'back to 0 once the stream ended')
})

t.test('METRICS_PORT=0 serves /metrics on its own listener and not on the main port', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { METRICS_PORT: '0' })
  const address = gateway.gateway.metricsAddress()
  t.ok(address, 'the metrics listener has an address')
  t.not(new URL(address!).port, String(gateway.port), 'on a port of its own')

  const own = await scrape(`${address!}/metrics`)
  t.equal(own.status, 200)
  t.match(own.contentType, /^text\/plain/)
  t.match(own.text, /^session_gateway_requests_total|# TYPE session_gateway_requests_total counter/m)

  const other = await scrape(`${address!}/healthz`)
  t.equal(other.status, 404, 'the metrics listener serves nothing else')

  const main = await scrape(`${gateway.origin}/metrics`)
  t.equal(main.status, 404, '/metrics is not on the main port')
  t.match(JSON.parse(main.text), { error: { code: 'not_found' } })
})

t.test('regression: the METRICS_PORT listener takes a query, answers what it cannot serve OpenAI-style, and uses the server settings', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {
    METRICS_PORT: '0', SERVER_HEADERS_TIMEOUT_MS: '1000', SERVER_KEEP_ALIVE_TIMEOUT_MS: '7000', MAX_HEADER_BYTES: '4096'
  })
  const address = gateway.gateway.metricsAddress()!
  const port = Number(new URL(address).port)

  const withQuery = await scrape(`${address}/metrics?name[]=session_gateway_requests_total`)
  t.equal(withQuery.status, 200, 'a query (as scrapers may add) is ignored, not a 404')
  const head = await request(`${address}/metrics`, { method: 'HEAD' })
  t.equal(head.statusCode, 200, 'HEAD too')
  await head.body.dump()

  const { response: other } = await rawExchange(port, rawRequest('GET /healthz HTTP/1.1', 'Host: x', 'Connection: close'))
  t.equal(other.status, 404)
  t.match(JSON.parse(other.body.toString()), { error: { code: 'not_found', message: 'No route for GET /healthz. This listener (METRICS_PORT) serves /metrics only; the gateway\'s other routes are on its main port.' } }, 'the 404 says what this port serves')
  const { response: post } = await rawExchange(port, rawRequest('POST /metrics HTTP/1.1', 'Host: x', 'Content-Length: 0', 'Connection: close'))
  t.equal(post.status, 405)
  t.equal(headerOf(post, 'allow'), 'GET, HEAD')

  for (const [label, bytes, status, code] of [
    ['garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n', 400, 'malformed_request'],
    ['a header block over MAX_HEADER_BYTES', rawRequest('GET /metrics HTTP/1.1', 'Host: x', `x-big: ${'a'.repeat(6 * 1024)}`), 431, 'headers_too_large'],
    ['headers never finished (SERVER_HEADERS_TIMEOUT_MS)', 'GET /metrics HTTP/1.1\r\nHost: x\r\n', 408, 'request_timeout']
  ] as const) {
    const { response } = await rawExchange(port, bytes)
    t.equal(response.status, status, label)
    t.match(headerOf(response, 'content-type'), /^application\/json/, `${label}: JSON`)
    t.match(JSON.parse(response.body.toString()), { error: { type: 'invalid_request_error', code } }, `${label}: OpenAI-style, and the connection closed`)
  }
  const kept = await request(`${address}/metrics`)
  await kept.body.dump()
  t.equal(kept.headers['keep-alive'], 'timeout=7', 'SERVER_KEEP_ALIVE_TIMEOUT_MS, not Node\'s 5 s')
})
