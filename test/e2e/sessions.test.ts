import http, { Agent } from 'node:http'
import t from 'tap'
import { Client, request } from 'undici'
import type { MockUpstream, RecordedRequest } from '../support/mock-upstream.js'
import { startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'
import { rawExchange, rawRequest } from '../support/raw-http.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Sends one request with the given headers and returns what the upstream received. */
async function forwarded (gateway: RunningGateway, upstream: MockUpstream, headers: Record<string, string>): Promise<RecordedRequest> {
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', ...headers } })
  await res.body.dump()
  return upstream.requests.at(-1)!
}

/** Every value the upstream received for header `name`, however many lines carried it. */
function valuesOf (req: RecordedRequest, name: string): string[] {
  const values: string[] = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) values.push(req.rawHeaders[i + 1]!)
  }
  return values
}

t.test("a client's session-id reaches the upstream unchanged under both session_id and session-id", async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const id = 'sess_Ab-9.x:y/z~' + 'k'.repeat(200)
  const seen = await forwarded(gateway, upstream, { 'session-id': id })
  t.same(valuesOf(seen, 'session-id'), [id], 'session-id once, unchanged')
  t.same(valuesOf(seen, 'session_id'), [id], 'session_id once, unchanged')
})

t.test('a client that sends only session_id gets it forwarded under both names', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const seen = await forwarded(gateway, upstream, { session_id: '019a1b2c-3d4e-7f00-8abc-def012345678' })
  t.same(valuesOf(seen, 'session-id'), ['019a1b2c-3d4e-7f00-8abc-def012345678'])
  t.same(valuesOf(seen, 'session_id'), ['019a1b2c-3d4e-7f00-8abc-def012345678'])
})

t.test('when a client sends both spellings, session-id wins', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const seen = await forwarded(gateway, upstream, { session_id: 'old-underscore', 'session-id': 'new-hyphen' })
  t.same(valuesOf(seen, 'session-id'), ['new-hyphen'])
  t.same(valuesOf(seen, 'session_id'), ['new-hyphen'])
})

t.test('an insane session id is refused with invalid_session_id and nothing reaches the upstream', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)

  for (const [label, headers] of [
    ['a space', { 'session-id': 'has space' }],
    ['257 characters', { 'session-id': 'a'.repeat(257) }],
    ['a space in session_id', { session_id: 'has space' }]
  ] as const) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers })
    t.equal(res.statusCode, 400, label)
    t.match(await res.body.json(), { error: { message: String, type: 'invalid_request_error', code: 'invalid_session_id' } }, `${label}: OpenAI-style error`)
  }

  // Bytes undici refuses to put in a header: a tab inside the value, and non-ASCII (é, 日 as UTF-8).
  for (const [label, value] of [['a tab', 'abc\tdef'], ['non-ASCII bytes', Buffer.from('café-日本', 'utf8').toString('latin1')]] as const) {
    const { response } = await rawExchange(gateway.port, rawRequest(
      'POST /v1/responses HTTP/1.1', 'Host: localhost', `session-id: ${value}`, 'Content-Length: 2', 'Connection: close'
    ) + '{}')
    t.equal(response.status, 400, label)
    t.match(JSON.parse(response.body.toString()), { error: { type: 'invalid_request_error', code: 'invalid_session_id' } }, `${label}: OpenAI-style error`)
  }

  // Other control characters never get past Node's HTTP parser: a 400 before any session is decided.
  const { response: control } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1', 'Host: localhost', 'session-id: abc\x01def', 'Content-Length: 2', 'Connection: close'
  ) + '{}')
  t.equal(control.status, 400, 'a control character')
  t.match(JSON.parse(control.body.toString()), { error: { type: 'invalid_request_error', code: String } }, 'a control character: OpenAI-style error')

  t.equal(upstream.requests.length, 0, 'no refused request reached the upstream')
  const seen = await forwarded(gateway, upstream, { 'session-id': 'b'.repeat(256) })
  t.same(valuesOf(seen, 'session-id'), ['b'.repeat(256)], 'a 256-character id is still fine, and the gateway still serves')
  t.equal(upstream.requests.length, 1, 'only that request reached the upstream')
})

t.test('requests on one keep-alive connection share a generated session; a new connection gets another', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const first = new Client(gateway.origin, { pipelining: 1 })
  const second = new Client(gateway.origin, { pipelining: 1 })
  t.teardown(async () => { await first.close(); await second.close() })

  const sessionOn = async (client: Client): Promise<{ id: string, underscore: string }> => {
    const res = await client.request({ path: '/v1/responses', method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    await res.body.dump()
    const seen = upstream.requests.at(-1)!
    t.equal(valuesOf(seen, 'session-id').length, 1, 'one session-id header')
    return { id: seen.headers['session-id'] as string, underscore: seen.headers.session_id as string }
  }
  const a1 = await sessionOn(first)
  const a2 = await sessionOn(first)
  const b1 = await sessionOn(second)
  t.match(a1.id, UUID, 'a generated session id is a UUID')
  t.equal(a1.underscore, a1.id, 'sent under both spellings')
  t.equal(a2.id, a1.id, 'the second request on the same connection has the same session')
  t.match(b1.id, UUID)
  t.not(b1.id, a1.id, 'another connection has another session')
})

t.test('a keep-alive http.Agent with one socket keeps one session across requests', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(async () => { agent.destroy() })
  const sockets = new Set<unknown>()
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${gateway.baseURL}/models`, { agent }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      req.on('socket', (socket) => sockets.add(socket))
      req.on('error', reject)
      req.end()
    })
  }
  t.equal(sockets.size, 1, 'the agent reused its one connection')
  const ids = upstream.requests.map((r) => r.headers['session-id'])
  t.equal(new Set(ids).size, 1, 'one session for the whole connection')
  t.match(ids[0], UUID)
})

t.test('originator defaults to codex_cli_rs and a client-sent originator is kept', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  t.same(valuesOf(await forwarded(gateway, upstream, {}), 'originator'), ['codex_cli_rs'], 'default added')
  t.same(valuesOf(await forwarded(gateway, upstream, { originator: 'codex_vscode' }), 'originator'), ['codex_vscode'], "client's own kept, not doubled")
})

t.test('the ORIGINATOR setting changes the default originator', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { ORIGINATOR: 'my_gateway_tool' })
  t.same(valuesOf(await forwarded(gateway, upstream, {}), 'originator'), ['my_gateway_tool'])
  t.same(valuesOf(await forwarded(gateway, upstream, { originator: 'codex_exec' }), 'originator'), ['codex_exec'])
})
