/**
 * OpenTelemetry tracing (issue 14): with an OTLP endpoint set, every exchange is a server span
 * and every upstream attempt a client span, exported to a real OTLP/HTTP receiver in both
 * protocols; trace context is continued from the client and passed upstream; failures,
 * aborts and refusals are marked; WebSockets get a span per response; nothing secret is
 * exported; and with tracing off no OpenTelemetry module is even loaded.
 */
import { execFile } from 'node:child_process'
import { gzipSync } from 'node:zlib'
import http from 'node:http'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { ROOT_CONTEXT } from '@opentelemetry/api'
import { SamplingDecision, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base'
import { request } from 'undici'
import { chatCompletionStream, chatUsage } from '../support/chat-completions.js'
import { startGateway, startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'
import { replyJson, replySse, responseStream, sseEvent, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { SPAN_KIND, startOtlpReceiver, STATUS, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js'
import { sessionsHomedOn } from '../support/upstream-process.js'
import { answerResponseCreates, startWebSocketUpstream, type UpstreamWebSocket } from '../support/websocket-upstream.js'
import { WebSocket, type WsSocket } from '../support/ws.js'

const ROOT = join(import.meta.dirname, '..', '..')
const OTLP_TOKEN = 'otlp-header-secret-7f3a9c'
const PROTOCOLS = ['http/protobuf', 'http/json'] as const

/**
 * A receiver, and a gateway exporting to it in front of a mock upstream. Tap runs teardowns in
 * the order they were registered: the receiver closes after the gateway, whose close flushes
 * to it (closed first, it would make that flush wait out its bound).
 */
async function startTraced (t: Test, protocol: string = 'http/protobuf', env: Record<string, string> = {}): Promise<{ receiver: OtlpReceiver, upstream: MockUpstream, gateway: RunningGateway }> {
  const receiver = await startOtlpReceiver()
  const { upstream, gateway } = await startGatewayWithUpstream(t, { ...tracingEnv(receiver, protocol), ...env })
  t.teardown(async () => await receiver.close())
  return { receiver, upstream, gateway }
}

/** The gateway's tracing settings for `receiver`: a short batch delay so spans arrive at once. */
function tracingEnv (receiver: OtlpReceiver, protocol: string = 'http/protobuf'): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_EXPORTER_OTLP_HEADERS: `x-otlp-token=${OTLP_TOKEN}`,
    OTEL_BSP_SCHEDULE_DELAY: '20',
    OTEL_SERVICE_NAME: 'gateway-under-test',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test'
  }
}

function serverSpanOf (spans: ReceivedSpan[], sessionId: string): ReceivedSpan | undefined {
  return spans.find((span) => span.kind === SPAN_KIND.server && span.attributes['session.id'] === sessionId)
}

/** Waits for the server span of `sessionId` and its `children` children. */
async function spansFor (receiver: OtlpReceiver, sessionId: string, children = 1): Promise<{ server: ReceivedSpan, children: ReceivedSpan[] }> {
  const childrenOf = (spans: ReceivedSpan[], server: ReceivedSpan): ReceivedSpan[] => spans.filter((span) => span.parentSpanId === server.spanId)
  const spans = await receiver.waitForSpans((spans) => {
    const server = serverSpanOf(spans, sessionId)
    return server !== undefined && childrenOf(spans, server).length >= children
  })
  const server = serverSpanOf(spans, sessionId)!
  return { server, children: childrenOf(spans, server) }
}

for (const protocol of PROTOCOLS) {
  t.test(`an SSE exchange is a server span with one client span, exported over ${protocol}`, async (t) => {
    const { receiver, upstream, gateway } = await startTraced(t, protocol)
    upstream.handle(replySse([responseStream('resp_traced', 'traced answer')]))
    const res = await request(`${gateway.baseURL}/responses?stream=true`, { method: 'POST', body: '{"model":"gpt-test"}', headers: { 'session-id': 'trace-sse' } })
    t.equal(res.statusCode, 200)
    await res.body.dump()

    const { server, children } = await spansFor(receiver, 'trace-sse')
    t.equal(children.length, 1, 'one upstream attempt, one client span')
    const client = children[0]!
    t.equal(server.name, 'chat gpt-test', '{operation} {model}')
    t.equal(server.parentSpanId, '', 'no client trace context: a root span')
    t.equal(client.traceId, server.traceId)
    t.equal(client.kind, SPAN_KIND.client)
    t.equal(client.name, 'chat gpt-test')
    t.same(server.attributes, {
      'session.id': 'trace-sse',
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      'url.path': '/v1/responses',
      'session_gateway.session_source': 'header',
      'session_gateway.upstream': 'default',
      'session_gateway.ended_by': 'complete',
      'session_gateway.ttfb_ms': server.attributes['session_gateway.ttfb_ms']
    }, 'the server span: HTTP and session facts, no GenAI ones (a backend summing usage would count it twice)')
    t.type(server.attributes['session_gateway.ttfb_ms'], 'number')
    t.equal(server.statusCode, STATUS.unset)
    t.same(client.attributes, {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-test',
      'gen_ai.response.model': 'gpt-test',
      'gen_ai.response.id': 'resp_traced',
      'gen_ai.usage.input_tokens': 120,
      'gen_ai.usage.output_tokens': 7,
      'gen_ai.usage.cache_read.input_tokens': 100,
      'gen_ai.conversation.id': 'trace-sse',
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(upstream.origin).port),
      'url.path': '/v1/responses',
      'http.response.status_code': 200,
      'session_gateway.upstream': 'default',
      'session_gateway.ended_by': 'complete',
      'session_gateway.ttfb_ms': client.attributes['session_gateway.ttfb_ms']
    }, 'the client span: the GenAI call, with the usage from the stream')
    t.type(client.attributes['session_gateway.ttfb_ms'], 'number')
    t.match(server.resource, { 'service.name': 'gateway-under-test', 'deployment.environment': 'test' })

    const line = await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'trace-sse')
    t.equal(line.trace_id, server.traceId, 'the log line names the trace')
    t.equal(receiver.exports[0]!.headers['x-otlp-token'], OTLP_TOKEN, 'OTEL_EXPORTER_OTLP_HEADERS go to the collector')
    t.match(receiver.exports[0]!.contentType, protocol === 'http/json' ? /^application\/json/ : /^application\/x-protobuf/)
  })
}

t.test("a compressed JSON answer's GenAI facts reach the call's client span, which ends once they are in", async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t)
  const answer = { id: 'resp_gzipped', object: 'response', model: 'gpt-test', status: 'completed', usage: { input_tokens: 50, input_tokens_details: { cached_tokens: 32 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 55 } }
  const gzipped = gzipSync(Buffer.from(JSON.stringify(answer)))
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipped.length })
    res.end(gzipped)
  })
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"model":"gpt-test"}', headers: { 'session-id': 'trace-gzip', 'accept-encoding': 'gzip' } })
  t.same(await res.body.arrayBuffer().then(Buffer.from), gzipped, 'the client gets the compressed bytes as sent')
  const { server, children } = await spansFor(receiver, 'trace-gzip')
  t.equal(server.name, 'chat gpt-test')
  t.match(children[0]!.attributes, {
    'gen_ai.request.model': 'gpt-test',
    'gen_ai.response.id': 'resp_gzipped',
    'gen_ai.usage.input_tokens': 50,
    'gen_ai.usage.cache_read.input_tokens': 32,
    'gen_ai.usage.output_tokens': 5,
    'http.response.status_code': 200
  })
  t.equal(children[0]!.name, 'chat gpt-test')
})

t.test('a collector that refuses exports is reported in the log, once, and so is its recovery', async (t) => {
  let status = 401
  const exports: number[] = []
  const collector = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      exports.push(status)
      res.writeHead(status, { 'content-type': 'application/x-protobuf', 'content-length': 0 })
      res.end()
    })
  })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  const endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`
  const upstream = await startMockUpstream(replySse([responseStream('resp_refused_export', 'x')]))
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_HEADERS: `x-otlp-token=${OTLP_TOKEN}`, OTEL_BSP_SCHEDULE_DELAY: '20' })
  t.teardown(async () => { await gateway.close(); await upstream.close(); collector.closeAllConnections(); await new Promise((resolve) => collector.close(resolve)) })
  const send = async (session: string): Promise<void> => { await (await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': session } })).body.dump() }

  await send('export-refused-1')
  const warning = await gateway.waitForLog((l) => l.msg === 'tracing: exporting spans failed; they are dropped')
  t.match(warning, { level: 'warn', endpoint: `${endpoint}/v1/traces` })
  t.ok(Number(warning.lost_spans) >= 1, 'it says how many spans were lost')
  t.notMatch(JSON.stringify(warning), OTLP_TOKEN, 'no header value in the log')
  await send('export-refused-2')
  status = 200
  await send('export-accepted')
  const recovered = await gateway.waitForLog((l) => l.msg === 'tracing: spans reach the collector again')
  t.equal(recovered.level, 'info')
  t.ok(Number(recovered.lost_spans) >= 2, 'the spans lost meanwhile are counted')
  t.equal(gateway.logs.filter((l) => l.msg === 'tracing: exporting spans failed; they are dropped').length, 1, 'one warning while it kept failing')
  t.ok(exports.includes(401) && exports.at(-1) === 200)
})

t.test("a streamed chat completion's usage and model go on its client span, and no chatcmpl- id", async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t)
  const stream = chatCompletionStream('chatcmpl-traced', 'a traced chat answer', { usage: chatUsage(), model: 'gpt-chat-resolved' })
  upstream.handle(replySse([stream]))
  const body = '{"model":"gpt-chat","stream":true,"stream_options":{"include_usage":true},"messages":[]}'
  const res = await request(`${gateway.baseURL}/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'session-id': 'trace-chat-stream' } })
  t.equal(await res.body.text(), stream)

  const { children } = await spansFor(receiver, 'trace-chat-stream')
  const client = children[0]!
  t.equal(client.name, 'chat gpt-chat-resolved', 'named after the chunks\' model')
  t.match(client.attributes, {
    'gen_ai.operation.name': 'chat',
    'gen_ai.response.model': 'gpt-chat-resolved',
    'gen_ai.usage.input_tokens': 1500,
    'gen_ai.usage.output_tokens': 12,
    'gen_ai.usage.cache_read.input_tokens': 1280,
    'url.path': '/v1/chat/completions'
  })
  t.notOk('gen_ai.response.id' in client.attributes, 'a chat completion id is not reported as a response id, as for a JSON answer')
})

t.test("a client's traceparent is continued, and the upstream gets the attempt's", async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t)
  upstream.handle(replySse([responseStream('resp_parent', 'child')]))
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parentId = '00f067aa0ba902b7'
  const res = await request(`${gateway.baseURL}/responses`, {
    method: 'POST',
    body: '{}',
    headers: { 'session-id': 'trace-parent', traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=opaque' }
  })
  await res.body.dump()
  const { server, children } = await spansFor(receiver, 'trace-parent')
  t.equal(server.traceId, traceId, 'the same trace')
  t.equal(server.parentSpanId, parentId, "the client's span is the parent")
  const seen = upstream.requests.at(-1)!
  t.equal(seen.headers.traceparent, `00-${traceId}-${children[0]!.spanId}-01`, "upstream's parent is the attempt's client span")
  t.equal(seen.headers.tracestate, 'vendor=opaque', 'tracestate travels on')
  t.equal(seen.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'traceparent').length, 1, "the client's own traceparent is replaced, not doubled")
})

t.test("an unsampled client trace stays unsampled upstream, and nothing of it is exported", async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t)
  upstream.handle(replySse([responseStream('resp_unsampled', 'quiet')]))
  const traceId = '0af7651916cd43dd8448eb211c80319c'
  const unsampled = await request(`${gateway.baseURL}/responses`, {
    method: 'POST', body: '{}', headers: { 'session-id': 'trace-unsampled', traceparent: `00-${traceId}-b7ad6b7169203331-00` }
  })
  await unsampled.body.dump()
  const header = upstream.requests.at(-1)!.headers.traceparent as string
  t.match(header, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`), 'the same trace, still not sampled (parent-based sampling)')
  t.not(header.split('-')[2], 'b7ad6b7169203331', "the upstream's parent is the gateway's (unrecorded) attempt")
  // A sampled exchange after it: once its spans are in, the unsampled one would have been too.
  const sampled = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'trace-sampled' } })
  await sampled.body.dump()
  const spans = await receiver.waitForSpans((spans) => serverSpanOf(spans, 'trace-sampled') !== undefined)
  t.notOk(spans.some((span) => span.traceId === traceId), 'no span of the unsampled trace')
})

t.test('a ratio sampler decides each exchange by its trace id: a sampled one is exported whole, an unsampled one not at all, and both pass their trace on', async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t, 'http/protobuf', { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' })
  upstream.handle(replySse([responseStream('resp_ratio', 'half')]))
  // The official sampler, as the oracle: its decision is a function of the trace id alone.
  const oracle = new TraceIdRatioBasedSampler(0.5)
  const calls: Array<{ session: string, traceId: string, spanId: string, sampled: boolean }> = []
  for (let i = 0; i < 40; i++) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': `ratio-${i}` } })
    await res.body.dump()
    const [, traceId, spanId, flags] = (upstream.requests.at(-1)!.headers.traceparent as string).split('-') as [string, string, string, string]
    calls.push({ session: `ratio-${i}`, traceId, spanId, sampled: flags === '01' })
  }
  const sampled = calls.filter((call) => call.sampled)
  t.ok(sampled.length > 0 && sampled.length < calls.length, `some exchanges sampled, some not (${sampled.length} of ${calls.length})`)
  for (const call of calls) {
    const decision = oracle.shouldSample(ROOT_CONTEXT, call.traceId).decision
    t.equal(call.sampled, decision === SamplingDecision.RECORD_AND_SAMPLED, `${call.session}: the upstream's sampled flag is the sampler's decision on that trace id`)
  }
  const spans = await receiver.waitForSpans((spans) => sampled.every((call) => spans.some((span) => span.spanId === call.spanId)))
  for (const call of sampled) {
    const server = serverSpanOf(spans, call.session)
    t.equal(server?.traceId, call.traceId, `${call.session}: its server span is in the trace it was sampled on`)
    t.equal(spans.find((span) => span.spanId === call.spanId)?.parentSpanId, server?.spanId, `${call.session}: the upstream's parent is its client span`)
  }
  const left = new Set(calls.filter((call) => !call.sampled).map((call) => call.traceId))
  // Closing flushes what is still queued: after it, every span the gateway would export is in.
  await gateway.close()
  t.notOk(receiver.spans.some((span) => left.has(span.traceId)), 'no span of an unsampled exchange is exported')
  for (const call of calls) {
    const line = gateway.logs.find((l) => l.msg === 'request' && l.session === call.session)
    t.equal(line?.trace_id, call.traceId, `${call.session}: the log line names its trace`)
  }
})

t.test("regression: an unsampled exchange's call record still has the model its response named", async (t) => {
  // Without cache analysis the model comes from the response only, read because tracing is on.
  const { upstream, gateway } = await startTraced(t, 'http/protobuf', { CACHE_ANALYSIS: 'false' })
  upstream.handle(replySse([responseStream('resp_unsampled_model', 'quiet')]))
  for (const [session, flags] of [['model-unsampled', '00'], ['model-sampled', '01']] as const) {
    const res = await request(`${gateway.baseURL}/responses`, {
      method: 'POST', body: '{}', headers: { 'session-id': session, traceparent: `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-${flags}` }
    })
    await res.body.dump()
    await gateway.waitForLog((l) => l.msg === 'request' && l.session === session)
    const calls = await (await request(`${gateway.origin}/gateway/sessions/${session}/requests`)).body.json() as { data: Array<{ model: string | null }> }
    t.equal(calls.data[0]?.model, 'gpt-test', `${session}: the model is recorded, sampled or not`)
  }
})

t.test('a failover is one client span per attempt under one server span', async (t) => {
  const receiver = await startOtlpReceiver()
  const failing = await startMockUpstream(replyJson({ error: { message: 'overloaded', type: 'server_error', code: null } }, 503))
  const serving = await startMockUpstream(replySse([responseStream('resp_failover', 'second try')]))
  const upstreams = [{ name: 'a', url: failing.url }, { name: 'b', url: serving.url }]
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify(upstreams), ...tracingEnv(receiver) })
  t.teardown(async () => { await gateway.close(); await failing.close(); await serving.close(); await receiver.close() })
  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'trace-failover')
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"model":"gpt-test"}', headers: { 'session-id': session! } })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(failing.requests.length, 1, 'the first upstream was asked first, and failed')

  const { server, children } = await spansFor(receiver, session!, 2)
  t.equal(children.length, 2)
  const first = children.find((span) => span.attributes['session_gateway.upstream'] === 'a')
  const second = children.find((span) => span.attributes['session_gateway.upstream'] === 'b')
  t.match(first!.attributes, { 'http.response.status_code': 503, 'error.type': '503' })
  t.equal(first!.statusCode, STATUS.error)
  t.notOk('gen_ai.usage.input_tokens' in first!.attributes, 'the failed attempt made no call')
  t.match(second!.attributes, { 'http.response.status_code': 200, 'gen_ai.response.id': 'resp_failover', 'gen_ai.usage.output_tokens': 7 })
  t.equal(second!.statusCode, STATUS.unset)
  t.match(server.attributes, { 'session_gateway.upstream': 'b', 'http.response.status_code': 200, 'session_gateway.ended_by': 'complete' }, 'the exchange names the upstream that answered')
  t.equal(server.statusCode, STATUS.unset, 'the client got its answer')
  const seen = [failing.requests[0]!, serving.requests[0]!].map((r) => (r.headers.traceparent as string).split('-')[2])
  t.same(seen, [first!.spanId, second!.spanId], "each upstream's parent is its own attempt's span")
})

t.test('without tracing a client traceparent passes upstream untouched and logs carry no trace_id', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const res = await request(`${gateway.baseURL}/models`, { headers: { 'session-id': 'untraced', traceparent } })
  await res.body.dump()
  t.equal(upstream.requests.at(-1)!.headers.traceparent, traceparent)
  const line = await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'untraced')
  t.notOk('trace_id' in line)
})

t.test('a client that leaves mid-stream ends both spans with an error', async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t)
  upstream.handle(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(sseEvent({ type: 'response.created', sequence_number: 0, response: { id: 'resp_left', model: 'gpt-test' } }))
    await req.closed // held open until the gateway cancels it
  })
  const req = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'session-id': 'trace-abort' } })
  req.on('error', () => {})
  req.end('{}')
  const [res] = await new Promise<[http.IncomingMessage]>((resolve) => req.on('response', (r) => resolve([r])))
  await new Promise((resolve) => res.once('data', resolve))
  req.destroy()

  const { server, children } = await spansFor(receiver, 'trace-abort')
  t.equal(server.statusCode, STATUS.error)
  t.equal(server.attributes['error.type'], 'client_aborted')
  t.equal(server.attributes['session_gateway.ended_by'], 'client')
  t.equal(server.name, 'chat gpt-test', 'the model came with response.created')
  t.equal(children[0]!.statusCode, STATUS.error)
  t.equal(children[0]!.attributes['error.type'], 'client_aborted')
})

t.test('an unreachable upstream marks both spans with the failure code', async (t) => {
  const receiver = await startOtlpReceiver()
  const upstream = await startMockUpstream()
  const url = upstream.url
  await upstream.close() // nothing listens there now
  const gateway = await startGateway({ UPSTREAM_URL: url, ...tracingEnv(receiver) })
  t.teardown(async () => { await gateway.close(); await receiver.close() })
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'trace-502' } })
  await res.body.dump()
  t.equal(res.statusCode, 502)
  const { server, children } = await spansFor(receiver, 'trace-502')
  t.equal(server.statusCode, STATUS.error)
  t.equal(server.attributes['error.type'], 'ECONNREFUSED')
  t.equal(server.attributes['http.response.status_code'], 502)
  t.equal(server.name, 'POST /v1/responses', 'no model known: {method} {route}')
  t.equal(children[0]!.attributes['error.type'], 'ECONNREFUSED')
})

t.test("a 200 stream refused in its first event: the call's client span fails with the error's code, the server span does not", async (t) => {
  const { receiver, upstream, gateway } = await startTraced(t)
  upstream.handle(replySse([sseEvent({ type: 'error', code: 'rate_limit_exceeded', message: 'slow down', param: null, sequence_number: 0 })]))
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'trace-stream-refused' } })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  const { server, children } = await spansFor(receiver, 'trace-stream-refused')
  t.equal(children[0]!.attributes['error.type'], 'rate_limit_exceeded')
  t.equal(children[0]!.statusCode, STATUS.error)
  t.equal(server.attributes['error.type'], undefined, 'the client got a 200: the server span has no error')
  t.equal(server.statusCode, STATUS.unset)
})

for (const protocol of PROTOCOLS) {
  t.test(`refusals are spans with their error code, and no key or OTLP header value is ever exported (${protocol})`, async (t) => {
    const clientKey = 'gw-client-key-b81d55'
    const managedKey = 'sk-managed-key-0c9e21'
    const wrongKey = 'gw-wrong-key-77aa10'
    const { receiver, upstream, gateway } = await startTraced(t, protocol, { OPENAI_API_KEY: managedKey, GATEWAY_API_KEYS: clientKey })
    upstream.handle(replySse([responseStream('resp_keyed', 'secret-free')]))
    const ok = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'trace-keyed', authorization: `Bearer ${clientKey}` } })
    await ok.body.dump()
    const denied = await request(`${gateway.baseURL}/responses?api_key=${wrongKey}`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${wrongKey}` } })
    await denied.body.dump()
    const badSession = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'has a space', authorization: `Bearer ${clientKey}` } })
    await badSession.body.dump()
    t.same([ok.statusCode, denied.statusCode, badSession.statusCode], [200, 401, 400])

    const spans = await receiver.waitForSpans((spans) => spans.filter((s) => s.kind === SPAN_KIND.server).length >= 3 && spans.length >= 4)
    const refused = spans.filter((s) => s.attributes['error.type'] !== undefined)
    t.match(refused.find((s) => s.attributes['http.response.status_code'] === 401)?.attributes, { 'error.type': 'invalid_api_key', 'url.path': '/v1/responses', 'session_gateway.ended_by': 'gateway' })
    t.match(refused.find((s) => s.attributes['http.response.status_code'] === 400)?.attributes, { 'error.type': 'invalid_session_id' })
    t.equal(refused.length, 2, 'only the two refusals carry an error.type')
    t.ok(refused.every((s) => s.kind === SPAN_KIND.server && s.statusCode === STATUS.unset), "a client's mistake (4xx) is not an ERROR status for the server")

    const exported = Buffer.concat(receiver.exports.map((e) => e.body))
    for (const secret of [clientKey, managedKey, wrongKey, OTLP_TOKEN, 'Bearer', 'authorization']) {
      t.equal(exported.indexOf(secret), -1, `${secret} appears in no exported byte`)
    }
    t.equal(exported.indexOf('secret-free'), -1, 'no completion content either')
  })
}

t.test('a WebSocket is a connection span with a span per response on it', async (t) => {
  const receiver = await startOtlpReceiver()
  const upstream = await startWebSocketUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...tracingEnv(receiver) })
  t.teardown(async () => { await gateway.close(); await upstream.close(); await receiver.close() })
  const accepted = upstream.nextWebSocket()
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/responses`, { perMessageDeflate: false, headers: { 'session-id': 'trace-ws' } })
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => { ws.on('open', () => resolve()); ws.on('error', reject) })
  let turn = 0
  answerResponseCreates(await accepted, () => `resp_ws_${++turn}`, 'over the socket')
  const completed = async (): Promise<void> => await new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      if (JSON.parse(data.toString('utf8')).type !== 'response.completed') return
      ws.off('message', onMessage)
      resolve()
    }
    ws.on('message', onMessage)
  })
  for (let i = 0; i < 2; i++) {
    const done = completed()
    ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 'never exported' }))
    await done
  }
  ws.close(1000)

  // The connection span, its upgrade attempt and its two responses.
  const { server, children } = await spansFor(receiver, 'trace-ws', 3)
  t.equal(server.name, 'GET /v1/responses')
  t.match(server.attributes, { 'session_gateway.ended_by': 'complete', 'http.response.status_code': 101, 'session.id': 'trace-ws', 'session_gateway.upstream': 'default' })
  t.notOk(Object.keys(server.attributes).some((key) => key.startsWith('gen_ai.')), 'the connection span has no GenAI attributes: its responses do')
  const responses = children.filter((s) => s.attributes['gen_ai.response.id'] !== undefined)
  t.same(responses.map((s) => s.attributes['gen_ai.response.id']).sort(), ['resp_ws_1', 'resp_ws_2'])
  for (const response of responses) {
    t.equal(response.kind, SPAN_KIND.client)
    t.equal(response.name, 'chat gpt-test')
    t.match(response.attributes, { 'gen_ai.usage.input_tokens': 120, 'gen_ai.usage.output_tokens': 7, 'gen_ai.conversation.id': 'trace-ws', 'session_gateway.upstream': 'default' })
  }
  const handshake = children.find((s) => s.attributes['gen_ai.response.id'] === undefined)
  t.match(handshake?.attributes, { 'http.response.status_code': 101, 'server.address': '127.0.0.1' }, 'the upgrade request is the attempt')
  t.equal(Buffer.concat(receiver.exports.map((e) => e.body)).indexOf('never exported'), -1, 'no prompt content')
})

/** A traced gateway in front of a WebSocket upstream, and a client WebSocket through it in `session`. */
async function tracedWebSocket (t: Test, session: string): Promise<{ receiver: OtlpReceiver, ws: WsSocket, server: UpstreamWebSocket }> {
  const receiver = await startOtlpReceiver()
  const upstream = await startWebSocketUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...tracingEnv(receiver) })
  t.teardown(async () => { await gateway.close(); await upstream.close(); await receiver.close() })
  const accepted = upstream.nextWebSocket()
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/responses`, { perMessageDeflate: false, headers: { 'session-id': session } })
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => { ws.on('open', () => resolve()); ws.on('error', reject) })
  return { receiver, ws, server: await accepted }
}

/** Resolves when the upstream end has received a message of `type`. */
async function upstreamReceived (server: UpstreamWebSocket, type: string): Promise<void> {
  await new Promise<void>((resolve) => server.ws.on('message', (data: Buffer) => { if (JSON.parse(data.toString('utf8')).type === type) resolve() }))
}

// Regression: every client message opened a response span, so a response.processed (which no
// response answers) left one open, ended as connection_closed when the socket closed.
t.test('a WebSocket message other than response.create opens no response span', async (t) => {
  const { receiver, ws, server } = await tracedWebSocket(t, 'trace-ws-other')
  answerResponseCreates(server, () => 'resp_ws_answered', 'answered')
  const completed = new Promise<void>((resolve) => ws.on('message', (data: Buffer) => { if (JSON.parse(data.toString('utf8')).type === 'response.completed') resolve() }))
  ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 'one turn' }))
  await completed
  const processed = upstreamReceived(server, 'response.processed')
  ws.send(JSON.stringify({ type: 'response.processed', response_id: 'resp_ws_answered' }))
  await processed
  ws.close(1000)

  // The connection span ends after every span on it: once it is in, so are they.
  const { children } = await spansFor(receiver, 'trace-ws-other', 2)
  const responses = children.filter((s) => s.attributes['http.response.status_code'] === undefined)
  t.same(responses.map((s) => s.attributes['gen_ai.response.id']), ['resp_ws_answered'], 'one response span, the response.create\'s')
  t.notOk(children.some((s) => s.attributes['error.type'] === 'connection_closed'), 'none left open to end as connection_closed')
  t.equal(children.length, 2, 'the upgrade attempt and the one response')
})

t.test('a response.create whose answer never comes is a response span ended as connection_closed', async (t) => {
  const { receiver, ws, server } = await tracedWebSocket(t, 'trace-ws-unanswered')
  const arrived = upstreamReceived(server, 'response.create')
  ws.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 'never answered' }))
  await arrived
  ws.close(1000)
  const { children } = await spansFor(receiver, 'trace-ws-unanswered', 2)
  const response = children.find((s) => s.attributes['http.response.status_code'] === undefined)
  t.match(response, { kind: SPAN_KIND.client, statusCode: STATUS.error, attributes: { 'error.type': 'connection_closed', 'gen_ai.conversation.id': 'trace-ws-unanswered' } })
})

// Regression: a response.append (codex's incremental request) was no request, so the response
// it asks for had no span until the upstream answered, and none at all when it never did.
t.test('a response.append is a request too: unanswered, its response span ends as connection_closed', async (t) => {
  const { receiver, ws, server } = await tracedWebSocket(t, 'trace-ws-append')
  const arrived = upstreamReceived(server, 'response.append')
  ws.send(JSON.stringify({ type: 'response.append', input: [{ role: 'user', content: 'never answered' }] }))
  await arrived
  ws.close(1000)
  // The connection span ends after every span on it: once it is in, so are they.
  const { children } = await spansFor(receiver, 'trace-ws-append', 1)
  const response = children.find((s) => s.attributes['http.response.status_code'] === undefined)
  t.match(response, { kind: SPAN_KIND.client, statusCode: STATUS.error, attributes: { 'error.type': 'connection_closed', 'gen_ai.conversation.id': 'trace-ws-append' } })
})

/** Runs a gateway from dist/ in a child process where resolving any @opentelemetry module fails. */
async function gatewayWithOpenTelemetryBlocked (upstream: MockUpstream, env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const dist = (file: string): string => pathToFileURL(join(ROOT, 'dist', 'src', file)).href
  const script = `
    const { createGateway } = await import(${JSON.stringify(dist('server/build-gateway.js'))})
    const { loadConfig } = await import(${JSON.stringify(dist('config/load-config.js'))})
    const env = { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', UPSTREAM_URL: ${JSON.stringify(upstream.url)}, ...JSON.parse(process.argv[1]) }
    const gateway = await createGateway(loadConfig({ env }))
    const origin = await gateway.listen()
    const res = await fetch(origin + '/v1/responses', { method: 'POST', body: '{}', headers: { 'session-id': 'child' } })
    await res.arrayBuffer()
    await gateway.close()
    process.stdout.write(JSON.stringify({ status: res.status }))`
  const hooks = join(ROOT, 'test', 'support', 'block-opentelemetry.mjs')
  return await new Promise((resolve) => {
    execFile(process.execPath, ['--import', pathToFileURL(hooks).href, '--input-type=module', '-e', script, JSON.stringify(env)], { env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number | null }).code ?? null, stdout, stderr })
    })
  })
}

t.test('with no endpoint set no OpenTelemetry module is loaded', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(async () => await upstream.close())
  upstream.handle(replySse([responseStream('resp_child', 'plain')]))
  const off = await gatewayWithOpenTelemetryBlocked(upstream, {})
  t.equal(off.code, 0, off.stderr)
  t.same(JSON.parse(off.stdout), { status: 200 }, 'the gateway proxied a request with every @opentelemetry module unloadable')
  // The control: the same child with an endpoint set must hit the block, or the check proves nothing.
  const on = await gatewayWithOpenTelemetryBlocked(upstream, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' })
  t.not(on.code, 0)
  t.match(on.stderr, /@opentelemetry is blocked/)
})

t.test('closing the gateway flushes spans still queued', async (t) => {
  // A batch delay far longer than the test: only the shutdown's flush can deliver the span.
  const { receiver, upstream, gateway } = await startTraced(t, 'http/protobuf', { OTEL_BSP_SCHEDULE_DELAY: '600000' })
  upstream.handle(replySse([responseStream('resp_flush', 'flushed')]))
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'session-id': 'trace-flush' } })
  await res.body.dump()
  await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'trace-flush')
  t.equal(receiver.spans.length, 0, 'nothing exported before the close')
  await gateway.close()
  t.ok(serverSpanOf(receiver.spans, 'trace-flush'), 'the span was exported by close()')
})
