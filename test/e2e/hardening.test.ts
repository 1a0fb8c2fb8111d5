/**
 * Regressions from the hostile-input pass over the landed gateway (issue 15), one test a
 * defect, each named after it.
 */
import t from 'tap'
import { request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { headerOf, rawExchange, rawRequest } from '../support/raw-http.js'

t.test('regression: a session-id after 1,000 other header lines is kept, not dropped silently', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { MAX_HEADER_BYTES: '32768' })
  const filler = Array.from({ length: 1_200 }, (_, i) => `h${i}: ${i}`)
  const { response } = await rawExchange(gateway.port, rawRequest('GET /v1/models HTTP/1.1', 'Host: x', ...filler, 'session-id: late-session', 'Connection: close'))
  t.equal(response.status, 200)
  const seen = upstream.requests.at(-1)
  t.equal(seen?.headers['session-id'], 'late-session', 'the client\'s session went upstream')
  t.equal(seen?.headers.h1199, '1199', 'every header was read')
})

t.test('regression: a valid request pipelined before malformed bytes is answered first, then the 400', async (t) => {
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const { upstream, gateway } = await startGatewayWithUpstream(t, {}, async (_req, res) => {
    await released // the upstream is slow: the malformed bytes are parsed while it works
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  const exchange = rawExchange(gateway.port, rawRequest('GET /v1/models HTTP/1.1', 'Host: x') + 'THIS IS NOT HTTP\r\n\r\n')
  await upstream.nextRequest()
  release()
  const { responses } = await exchange
  t.same(responses.map((r) => r.status), [200, 400], 'the upstream\'s answer first, then the 400')
  t.equal(responses[0]?.body.toString(), '{"ok":true}')
  t.equal(JSON.parse(responses[1]?.body.toString() ?? '{}').error.code, 'malformed_request')
})

t.test('regression: TRACE is refused like CONNECT and never forwarded', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const { response } = await rawExchange(gateway.port, rawRequest('TRACE /v1/models HTTP/1.1', 'Host: x', 'Connection: close'))
  t.equal(response.status, 405)
  t.equal(JSON.parse(response.body.toString()).error.code, 'method_not_allowed')
  t.ok(headerOf(response, 'allow'), 'with an allow header')
  t.equal(upstream.requests.length, 0)
})

t.test('regression: a #fragment in the request target is not forwarded', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const { response } = await rawExchange(gateway.port, rawRequest('GET /v1/models?limit=2#frag HTTP/1.1', 'Host: x', 'Connection: close'))
  t.equal(response.status, 200)
  t.equal(upstream.requests.at(-1)?.url, '/v1/models?limit=2', 'the fragment is dropped')
})

t.test('regression: in managed mode without ADMIN_TOKEN the admin routes are not served, even on loopback', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { OPENAI_API_KEY: 'sk-managed', GATEWAY_API_KEYS: 'gw-1' })
  for (const path of ['/gateway/sessions', '/gateway/']) {
    const res = await request(`${gateway.origin}${path}`)
    t.equal(res.statusCode, 404, `${path} is not served`)
    await res.body.dump()
  }
  const { gateway: withToken } = await startGatewayWithUpstream(t, { OPENAI_API_KEY: 'sk-managed', GATEWAY_API_KEYS: 'gw-1', ADMIN_TOKEN: 'admin-1' })
  const res = await request(`${withToken.origin}/gateway/sessions`, { headers: { authorization: 'Bearer admin-1' } })
  t.equal(res.statusCode, 200, 'with ADMIN_TOKEN set they are')
  await res.body.dump()
})
