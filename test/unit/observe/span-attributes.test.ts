import t from 'tap'
import { attemptAttributes, errorType, genAiOperation, isError, outcomeAttributes, requestAttributes, sessionAttributes, spanName, usageAttributes } from '../../../src/observe/span-attributes.js'
import { responseModel } from '../../../src/observe/response-observer.js'

t.test('model calls are GenAI chat operations; other requests are not', async (t) => {
  t.equal(genAiOperation('POST', '/v1/responses', 'http'), 'chat')
  t.equal(genAiOperation('POST', '/v1/chat/completions', 'http'), 'chat')
  t.equal(genAiOperation('GET', '/v1/responses', 'websocket'), 'chat')
  t.equal(genAiOperation('GET', '/v1/responses/resp_1', 'http'), undefined)
  t.equal(genAiOperation('GET', '/v1/models', 'http'), undefined)
})

t.test('span names: {operation} {model}, else {method} {route} with ids folded', async (t) => {
  t.equal(spanName('chat', 'gpt-5', 'POST', '/v1/responses'), 'chat gpt-5')
  t.equal(spanName('chat', undefined, 'POST', '/v1/responses'), 'POST /v1/responses')
  t.equal(spanName(undefined, 'gpt-5', 'GET', '/v1/models'), 'GET /v1/models')
  t.notMatch(spanName(undefined, undefined, 'GET', '/v1/responses/resp_abc123'), 'resp_abc123', 'an id is not a span name')
})

t.test('request, session, attempt and usage attributes', async (t) => {
  t.same(requestAttributes('POST', '/v1/responses'), { 'http.request.method': 'POST', 'url.path': '/v1/responses' }, 'the server span: HTTP facts only')
  t.same(sessionAttributes({ id: 's1', source: 'previous_response_id' } as never), { 'session.id': 's1', 'session_gateway.session_source': 'previous_response_id' })
  t.same(attemptAttributes({ upstream: 'b', origin: 'https://api.openai.com', method: 'POST', path: '/v1/responses' }, 'chat', 's1'), {
    'http.request.method': 'POST',
    'server.address': 'api.openai.com',
    'server.port': 443,
    'url.path': '/v1/responses',
    'session_gateway.upstream': 'b',
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.system': 'openai',
    'gen_ai.conversation.id': 's1'
  }, 'the client span: the target, and the GenAI operation of a model call')
  t.same(attemptAttributes({ upstream: 'default', origin: 'http://10.0.0.1:8000', method: 'GET', path: '/v1/models' }, undefined, 's1'), {
    'http.request.method': 'GET', 'server.address': '10.0.0.1', 'server.port': 8000, 'url.path': '/v1/models', 'session_gateway.upstream': 'default'
  }, 'not a model call: no GenAI attributes')
  t.same(usageAttributes({ input: 10, cached: 4, output: 3, reasoning: 1 }), { 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 3, 'gen_ai.usage.cache_read.input_tokens': 4 })
})

t.test('error.type and ERROR status: failures, aborts and 5xx; a refusal keeps its code', async (t) => {
  const complete = { status: 200, endedBy: 'complete' as const, ttfbMs: 12.34 }
  t.equal(errorType(complete), undefined)
  t.equal(isError(complete), false)
  t.same(outcomeAttributes(complete), { 'session_gateway.ended_by': 'complete', 'http.response.status_code': 200, 'session_gateway.ttfb_ms': 12.3 })
  const aborted = { status: 200, endedBy: 'client' as const, ttfbMs: 5 }
  t.equal(errorType(aborted), 'client_aborted')
  t.equal(isError(aborted), true)
  const failed = { status: 502, endedBy: 'upstream' as const, ttfbMs: -1, failure: { kind: 'connect' as const, code: 'ECONNREFUSED' } }
  t.equal(errorType(failed), 'ECONNREFUSED')
  t.notOk('session_gateway.ttfb_ms' in outcomeAttributes(failed), 'no ttfb when no response came')
  const refused = { status: 401, endedBy: 'gateway' as const, ttfbMs: -1, refusedWith: 'invalid_api_key' }
  t.equal(errorType(refused), 'invalid_api_key')
  t.equal(isError(refused), false, "a client's mistake is not the server's error")
  t.equal(isError({ status: 503, endedBy: 'gateway', ttfbMs: -1, refusedWith: 'shutting_down' }), true)
  const stopped = { status: 408, endedBy: 'gateway' as const, ttfbMs: -1, stoppedWith: 'request_timeout' }
  t.equal(errorType(stopped), 'request_timeout', 'a request the gateway stopped after it went upstream keeps its code')
  t.equal(isError(stopped), false)
  const upstream429 = { status: 429, endedBy: 'complete' as const, ttfbMs: 3 }
  t.equal(errorType(upstream429), undefined, 'the server span relays a 4xx without error')
  t.equal(errorType(upstream429, true), '429', 'the client span of the attempt counts it')
  t.equal(isError(upstream429, true), true)
})

t.test('the model is read from response.created without parsing it, and never from inside a string', async (t) => {
  t.equal(responseModel('{"type":"response.created","response":{"id":"resp_1","instructions":"say \\"model\\":\\"fake\\"","model":"gpt-5-codex","tools":[]}}'), 'gpt-5-codex')
  t.equal(responseModel('{"type":"response.created","response":{"id":"resp_1"}}'), undefined)
})
