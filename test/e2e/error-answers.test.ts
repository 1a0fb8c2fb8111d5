/**
 * Regressions from the review of the answers the gateway gives itself to requests it does not
 * forward: each names what the client sent and what it should do instead, OpenAI-style.
 */
import t from 'tap'
import { request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { headerOf, rawExchange, rawRequest, type RawResponse } from '../support/raw-http.js'
import { rawWebSocket } from '../support/raw-websocket.js'

function errorOf (response: RawResponse): { message: string, type: string, code: string, param: string | null } {
  return (JSON.parse(response.body.toString()) as { error: { message: string, type: string, code: string, param: string | null } }).error
}

t.test('regression: an absolute-form target is refused with 400 absolute_form_target, not a 404 naming its path', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  for (const target of ['http://evil.example/v1/models', 'http://evil.example/healthz', 'HTTPS://evil.example/']) {
    const { response } = await rawExchange(gateway.port, rawRequest(`GET ${target} HTTP/1.1`, 'Host: evil.example', 'Connection: close'))
    t.equal(response.status, 400, target)
    t.match(errorOf(response), { type: 'invalid_request_error', code: 'absolute_form_target', message: /not a forward proxy/ }, target)
  }
  const upgrade = await rawWebSocket(gateway.port, 'http://evil.example/v1/responses')
  t.equal(upgrade.status, 400, 'a WebSocket upgrade too')
  await upgrade.closed
  t.equal(upstream.requests.length, 0, 'nothing went upstream')
})

t.test('regression: a 404 names the path as the client sent it (//v1/models, not /models)', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t)
  for (const target of ['//v1/models', '/v2/models?key=secret', '/healthz/']) {
    const { response } = await rawExchange(gateway.port, rawRequest(`GET ${target} HTTP/1.1`, 'Host: x', 'Connection: close'))
    t.equal(response.status, 404, target)
    const path = target.split('?')[0]!
    t.match(errorOf(response), { code: 'not_found', message: `No route for GET ${path}. The gateway serves /v1/*` }, target)
    t.notOk(errorOf(response).message.includes('secret'), `${target}: no query in the message`)
  }
})

t.test('regression: a 404 lists the routes its listener serves, /metrics and /gateway/ when they are served there', async (t) => {
  const notFound = async (env: Record<string, string>): Promise<string> => {
    const { gateway } = await startGatewayWithUpstream(t, env)
    const { response } = await rawExchange(gateway.port, rawRequest('GET /metric HTTP/1.1', 'Host: x', 'Connection: close'))
    t.equal(response.status, 404)
    return errorOf(response).message
  }
  const said = 'No route for GET /metric. The gateway serves /v1/* (forwarded upstream), /healthz, /readyz'
  t.equal(await notFound({}), `${said}, /metrics and /gateway/.`, 'loopback, pass-through mode: /metrics and the admin routes are there')
  t.equal(await notFound({ METRICS_PORT: '0' }), `${said} and /gateway/.`, '/metrics on its own listener')
  t.equal(await notFound({ OPENAI_API_KEY: 'sk-test' }), `${said} and /metrics.`, 'managed mode without ADMIN_TOKEN: no admin routes')
  t.equal(await notFound({ OPENAI_API_KEY: 'sk-test', METRICS_PORT: '0' }), 'No route for GET /metric. The gateway serves /v1/* (forwarded upstream), /healthz and /readyz.', 'neither')
})

t.test('regression: the health endpoints answer HEAD like GET, and other methods 405 with Allow', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t)
  for (const path of ['/healthz', '/readyz']) {
    const get = await request(`${gateway.origin}${path}`)
    const body = await get.body.text()
    const head = await request(`${gateway.origin}${path}`, { method: 'HEAD' })
    t.equal(head.statusCode, 200, `HEAD ${path}`)
    t.equal(head.headers['content-type'], get.headers['content-type'], `HEAD ${path}: the GET's content-type`)
    t.equal(head.headers['content-length'], String(Buffer.byteLength(body)), `HEAD ${path}: the GET's length`)
    t.equal(await head.body.text(), '', `HEAD ${path}: no body`)
    for (const method of ['POST', 'DELETE']) {
      const { response } = await rawExchange(gateway.port, rawRequest(`${method} ${path} HTTP/1.1`, 'Host: x', 'Content-Length: 0', 'Connection: close'))
      t.equal(response.status, 405, `${method} ${path}`)
      t.equal(headerOf(response, 'allow'), 'GET, HEAD', `${method} ${path}: Allow names what is served`)
      t.match(errorOf(response), { code: 'method_not_allowed', message: `${path} answers GET and HEAD only, not ${method}.` })
    }
  }
  const missing = await request(`${gateway.origin}/nothing-here`, { method: 'HEAD' })
  t.equal(missing.statusCode, 404, 'HEAD on no route is still a 404')
  await missing.body.dump()
})

t.test('regression: a WebSocket upgrade outside /v1 says where WebSockets are served, and is counted as route {other}', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t)
  const client = await rawWebSocket(gateway.port, '/healthz')
  t.equal(client.status, 404)
  await client.closed
  const error = (JSON.parse(client.received().toString()) as { error: { code: string, message: string } }).error
  t.equal(error.code, 'not_found')
  t.equal(error.message, 'No WebSocket route for /healthz. WebSockets are served under /v1/ only (codex opens /v1/responses).')
  await gateway.waitForLog((l) => l.msg === 'refused' && l.path === '/healthz')
  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  t.match(metrics, 'session_gateway_requests_total{route="{other}",method="GET",status_class="4xx",transport="websocket",upstream="none"} 1')
  t.notMatch(metrics, 'route="/v1",', 'not under /v1')
})

t.test('regression: /gateway/sessions refuses a limit or offset that is not a whole number, naming it', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t)
  for (const [query, param] of [['limit=abc', 'limit'], ['limit=', 'limit'], ['offset=1.5', 'offset'], ['limit=10&offset=x', 'offset']] as const) {
    const res = await request(`${gateway.origin}/gateway/sessions?${query}`)
    t.equal(res.statusCode, 400, query)
    t.match(await res.body.json(), { error: { type: 'invalid_request_error', code: 'invalid_parameter', param, message: new RegExp(`^The query parameter ${param} must be a whole number`) } }, query)
  }
  const clamped = await request(`${gateway.origin}/gateway/sessions?limit=1000&offset=-3`)
  t.equal(clamped.statusCode, 200, 'a whole number out of range is held to it')
  t.match(await clamped.body.json(), { object: 'list', limit: 500, offset: 0 })
})
