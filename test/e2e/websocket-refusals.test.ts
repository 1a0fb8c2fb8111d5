/**
 * Regressions from the hardening pass (issue 15): a WebSocket handshake the gateway refuses is
 * logged and counted like any refused request, and handshakes count against the rate limit.
 */
import t from 'tap'
import { startGateway } from '../support/gateway.js'
import { rawWebSocket } from '../support/raw-websocket.js'
import { startWebSocketUpstream } from '../support/websocket-upstream.js'

async function requestsCounted (origin: string, labels: string): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`session_gateway_requests_total{${labels}}`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

t.test('regression: refused WebSocket handshakes are logged and counted (401, 400, 404, 426)', async (t) => {
  const upstream = await startWebSocketUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, OPENAI_API_KEY: 'sk-up', GATEWAY_API_KEYS: 'gw-1' })
  const rejecting = await startGateway({ UPSTREAM_URL: upstream.url, WEBSOCKET: 'reject' })
  t.teardown(async () => { await gateway.close(); await rejecting.close(); await upstream.close() })

  const cases: Array<[number, Promise<{ status: number, closed: Promise<unknown> }>, string]> = [
    [401, rawWebSocket(gateway.port, '/v1/responses'), 'missing_api_key'],
    [400, rawWebSocket(gateway.port, '/v1/responses', { authorization: 'Bearer gw-1', 'session-id': 'has space' }), 'invalid_session_id'],
    [404, rawWebSocket(gateway.port, '/v1x', { authorization: 'Bearer gw-1' }), 'not_found']
  ]
  for (const [status, opening, code] of cases) {
    const client = await opening
    t.equal(client.status, status, `${code}: answered ${status}`)
    await client.closed
    const line = await gateway.waitForLog((l) => l.msg === 'refused' && l.error === code)
    t.equal(line.transport, 'websocket', `${code}: the refusal line names the transport`)
    t.equal(line.status, status)
  }
  t.equal(await requestsCounted(gateway.origin, 'route="/v1/responses",method="GET",status_class="4xx",transport="websocket",upstream="none"'), 2, 'the 401 and the 400 are counted')

  const rejected = await rawWebSocket(rejecting.port, '/v1/responses')
  t.equal(rejected.status, 426)
  await rejected.closed
  await rejecting.waitForLog((l) => l.msg === 'refused' && l.error === 'websockets_disabled')
  t.equal(await requestsCounted(rejecting.origin, 'route="/v1/responses",method="GET",status_class="4xx",transport="websocket",upstream="none"'), 1, 'the 426 is counted')
  t.equal(upstream.handshakes.length, 0, 'nothing went upstream')
})

t.test('regression: WebSocket handshakes count against RATE_LIMIT_PER_MINUTE like HTTP requests', async (t) => {
  const upstream = await startWebSocketUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, RATE_LIMIT_PER_MINUTE: '2' })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  const headers = { authorization: 'Bearer client-key-1' }
  const first = await fetch(`${gateway.baseURL}/models`, { headers })
  t.equal(first.status, 200, 'an HTTP request takes one of the two')
  const opened = await rawWebSocket(gateway.port, '/v1/responses', headers)
  t.equal(opened.status, 101, 'a handshake takes the other')
  opened.socket.destroy()
  const limited = await rawWebSocket(gateway.port, '/v1/responses', headers)
  t.equal(limited.status, 429, 'the next handshake is over the limit')
  t.ok(limited.headers.some(([name]) => name === 'retry-after'), 'with retry-after')
  await limited.closed
  t.equal(upstream.handshakes.length, 1, 'the limited handshake never went upstream')
  const other = await rawWebSocket(gateway.port, '/v1/responses', { authorization: 'Bearer client-key-2' })
  t.equal(other.status, 101, 'another key has its own allowance')
  other.socket.destroy()
})
