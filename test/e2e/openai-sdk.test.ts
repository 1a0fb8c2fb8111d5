/**
 * The real `openai` SDK pointed at the gateway: what a user of the SDK sees is what the
 * upstream sent, and what the upstream sees is the SDK's request plus the session headers.
 */
import { setImmediate } from 'node:timers/promises'
import t, { type Test } from 'tap'
import OpenAI, { APIError } from 'openai'
import { replyJson, replySse, responseStream, type MockUpstream, type RecordedRequest } from '../support/mock-upstream.js'
import { startGatewayWithUpstream } from '../support/gateway.js'

const API_KEY = 'sk-test-sdk-0123456789'

interface Harness {
  upstream: MockUpstream
  client: OpenAI
  /** Client connections the gateway has accepted so far. */
  connections: () => number
}

async function setUp (t: Test): Promise<Harness> {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  let connections = 0
  gateway.gateway.server.on('connection', () => { connections++ })
  const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: API_KEY, maxRetries: 0 })
  return { upstream, client, connections: () => connections }
}

/** What every request the SDK makes must look like by the time it reaches the upstream. */
function assertForwarded (t: Test, seen: RecordedRequest, method: string, url: string): string {
  t.equal(seen.method, method, 'method kept')
  t.equal(seen.url, url, 'path mapped onto the upstream base URL')
  t.equal(seen.headers.authorization, `Bearer ${API_KEY}`, 'the API key passes through as sent')
  const underscore = seen.headers.session_id
  const hyphen = seen.headers['session-id']
  t.type(underscore, 'string', 'session_id sent')
  t.ok(typeof underscore === 'string' && underscore.length > 0, 'session_id is not empty')
  t.equal(hyphen, underscore, 'session-id and session_id carry the same id')
  t.equal(seen.headers.originator, 'codex_cli_rs', 'the configured originator is added (the SDK sends none)')
  return underscore as string
}

t.test('a streamed responses.create yields the events the upstream sent', async (t) => {
  const { upstream, client } = await setUp(t)
  const text = 'Hello from the mock — 日本語 🚀'
  upstream.handle(replySse([responseStream('resp_sdk_stream', text)]))

  const stream = await client.responses.create({ model: 'gpt-test', input: 'say hi', stream: true })
  const types: string[] = []
  let deltas = ''
  let last: OpenAI.Responses.ResponseStreamEvent | undefined
  for await (const event of stream) {
    types.push(event.type)
    if (event.type === 'response.output_text.delta') deltas += event.delta
    last = event
  }

  t.same(types, [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed'
  ], 'every event, in order')
  t.equal(deltas, text, 'the text deltas assemble to the mocked text')
  t.equal(last?.type, 'response.completed', 'the last event is response.completed')
  if (last?.type === 'response.completed') {
    t.equal(last.response.id, 'resp_sdk_stream', 'with the mocked response id')
    t.equal(textOf(last.response), text, 'the final response holds the whole text')
  }

  t.equal(upstream.requests.length, 1, 'one upstream request')
  const seen = upstream.requests[0]!
  assertForwarded(t, seen, 'POST', '/v1/responses')
  t.same(JSON.parse(seen.body.toString('utf8')), { model: 'gpt-test', input: 'say hi', stream: true }, 'body forwarded as the SDK sent it')
})

t.test('a non-streamed responses.create returns the upstream JSON', async (t) => {
  const { upstream, client } = await setUp(t)
  const body = {
    id: 'resp_sdk_json',
    object: 'response',
    created_at: 1764000000,
    status: 'completed',
    model: 'gpt-test',
    output: [{
      id: 'msg_sdk_json',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'plain answer', annotations: [] }]
    }],
    usage: { input_tokens: 3, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 5 }
  }
  upstream.handle(replyJson(body, 200, { 'x-request-id': 'req_sdk_json' }))

  const response = await client.responses.create({ model: 'gpt-test', input: 'say hi' })
  t.equal(response.id, 'resp_sdk_json', 'the mocked id')
  // output_text is computed by the SDK from output[], so it proves the output came through intact.
  t.equal(response.output_text, 'plain answer', 'the mocked text')
  t.equal(response.usage?.total_tokens, 5, 'usage intact')
  t.equal(response._request_id, 'req_sdk_json', 'upstream response headers reach the SDK')

  t.equal(upstream.requests.length, 1, 'one upstream request')
  assertForwarded(t, upstream.requests[0]!, 'POST', '/v1/responses')
})

t.test('models.list returns the upstream list', async (t) => {
  const { upstream, client } = await setUp(t)
  const data = [
    { id: 'gpt-test', object: 'model', created: 1764000000, owned_by: 'openai' },
    { id: 'gpt-test-mini', object: 'model', created: 1764000001, owned_by: 'openai' }
  ]
  upstream.handle(replyJson({ object: 'list', data }))

  const ids: string[] = []
  for await (const model of client.models.list()) ids.push(model.id)
  t.same(ids, ['gpt-test', 'gpt-test-mini'], 'the mocked models, in order')

  t.equal(upstream.requests.length, 1, 'one upstream request')
  assertForwarded(t, upstream.requests[0]!, 'GET', '/v1/models')
})

t.test('two sequential calls from one client reuse its keep-alive connection, and so share one session', async (t) => {
  const { upstream, client, connections } = await setUp(t)
  upstream.handle(replySse([responseStream('resp_first', 'one')]))
  for await (const _event of await client.responses.create({ model: 'gpt-test', input: 'one', stream: true })) { /* read to the end */ }
  // One turn of the event loop, as any real work between two calls takes: Node's fetch (undici,
  // pipelining 1) puts a socket back in its pool only on the setImmediate after the response ended.
  await setImmediate()
  upstream.handle(replyJson({ object: 'list', data: [] }))
  await client.models.list()

  t.equal(connections(), 1, 'the second call went out on the first call\'s connection')
  t.equal(upstream.requests.length, 2, 'two upstream requests')
  const first = assertForwarded(t, upstream.requests[0]!, 'POST', '/v1/responses')
  const second = assertForwarded(t, upstream.requests[1]!, 'GET', '/v1/models')
  t.equal(second, first, 'both requests carry the connection\'s session id')
})

t.test('back-to-back calls from one client alternate between two connections, and so two sessions', async (t) => {
  const { upstream, client, connections } = await setUp(t)
  upstream.handle(replyJson({ object: 'list', data: [] }))
  // No pause between calls. Node's fetch frees a socket one setImmediate after its response ended
  // (undici client-h1: "wait a full event loop cycle to reuse this socket"), so a call made at once
  // finds it busy and the pool opens a second connection; from then on the two alternate. To the
  // gateway these are two clients: the per-connection session is only as stable as the client's pool.
  for (let i = 0; i < 4; i++) await client.models.list()

  t.equal(connections(), 2, 'the client opened a second connection for the second call, and no more')
  const ids = upstream.requests.map((seen) => assertForwarded(t, seen, 'GET', '/v1/models'))
  t.equal(ids.length, 4, 'four upstream requests')
  t.not(ids[1], ids[0], 'the second call, on a new connection, got a new session')
  t.equal(ids[2], ids[0], 'the third call is back on the first connection and its session')
  t.equal(ids[3], ids[1], 'the fourth on the second')
})

t.test('a back-to-back call chained by previous_response_id keeps its session on the second connection', async (t) => {
  const { upstream, client, connections } = await setUp(t)
  upstream.handle((req, res) => {
    const id = `resp_chain_${upstream.requests.indexOf(req) + 1}`
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id, object: 'response', created_at: 1764000000, status: 'completed', model: 'gpt-test', output: [] }))
  })
  const first = await client.responses.create({ model: 'gpt-test', input: 'one' })
  // At once, as above: this lands on a second connection, which alone would mean a new session.
  await client.responses.create({ model: 'gpt-test', input: 'two', previous_response_id: first.id })

  t.equal(first.id, 'resp_chain_1', 'the first response\'s id')
  t.equal(connections(), 2, 'the chained call went out on another connection')
  const ids = upstream.requests.map((seen) => assertForwarded(t, seen, 'POST', '/v1/responses'))
  t.equal(ids[1], ids[0], 'previous_response_id led the gateway back to the first call\'s session')
})

t.test('an upstream 4xx error surfaces as the SDK\'s APIError with its status and message', async (t) => {
  const { upstream, client } = await setUp(t)
  const error = { message: "Invalid value for 'model': 'gpt-nope' does not exist.", type: 'invalid_request_error', param: 'model', code: 'model_not_found' }
  upstream.handle(replyJson({ error }, 400, { 'x-request-id': 'req_sdk_400' }))

  const thrown = await client.responses.create({ model: 'gpt-nope', input: 'say hi' }).then(
    () => undefined,
    (err: unknown) => err
  )
  t.ok(thrown instanceof APIError, 'an APIError')
  t.ok(thrown instanceof OpenAI.BadRequestError, 'the 400 subclass')
  if (thrown instanceof APIError) {
    t.equal(thrown.status, 400, 'the upstream status')
    t.equal(thrown.message, `400 ${error.message}`, 'the upstream message, as the SDK formats it')
    t.equal(thrown.code, 'model_not_found', 'error code')
    t.equal(thrown.param, 'model', 'error param')
    t.equal(thrown.type, 'invalid_request_error', 'error type')
    t.equal(thrown.requestID, 'req_sdk_400', 'the upstream x-request-id')
  }
  t.equal(upstream.requests.length, 1, 'no retry (maxRetries: 0)')
  assertForwarded(t, upstream.requests[0]!, 'POST', '/v1/responses')
})

function textOf (response: OpenAI.Responses.Response): string {
  let text = ''
  for (const item of response.output) {
    if (item.type !== 'message') continue
    for (const part of item.content) if (part.type === 'output_text') text += part.text
  }
  return text
}
