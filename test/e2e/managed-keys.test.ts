import t from 'tap'
import { request } from 'undici'
import { ConfigError } from '../../src/config/settings.js'
import { loadConfig } from '../../src/config/load-config.js'
import { replyJson, replySse, responseStream, startMockUpstream, type RecordedRequest } from '../support/mock-upstream.js'
import { startGateway, startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'

const MANAGED = { OPENAI_API_KEY: 'sk-upstream-secret', GATEWAY_API_KEYS: 'gk-one,gk-two' }
const SECRETS = ['sk-upstream-secret', 'gk-one', 'gk-two']

/** Every value the upstream received for header `name`, however many lines carried it. */
function valuesOf (req: RecordedRequest, name: string): string[] {
  const values: string[] = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name.toLowerCase()) values.push(req.rawHeaders[i + 1]!)
  }
  return values
}

async function post (gateway: RunningGateway, headers: Record<string, string>, path = '/responses'): Promise<{ status: number, text: string }> {
  const res = await request(`${gateway.baseURL}${path}`, { method: 'POST', body: '{"model":"gpt-test"}', headers: { 'content-type': 'application/json', ...headers } })
  return { status: res.statusCode, text: await res.body.text() }
}

t.test("by default the client's Authorization reaches the upstream unchanged", async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const { status } = await post(gateway, { authorization: 'Bearer sk-client-passthrough' })
  t.equal(status, 200)
  t.same(valuesOf(upstream.requests[0]!, 'authorization'), ['Bearer sk-client-passthrough'])

  const missing = await post(gateway, {})
  t.equal(missing.status, 200, 'no key is the upstream\'s business, not the gateway\'s')
  t.same(valuesOf(upstream.requests[1]!, 'authorization'), [])
  t.notOk(gateway.logText().includes('sk-client-passthrough'), 'the client\'s key is never logged')
})

t.test('managed mode: a gateway key buys the upstream key, and no gateway key goes upstream', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, MANAGED)
  upstream.handle(replySse([responseStream('resp_managed', 'managed answer')]))
  for (const key of ['gk-two', 'gk-one']) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } })
    t.equal(res.statusCode, 200, key)
    t.match(await res.body.text(), /response\.completed/)
  }
  t.equal(upstream.requests.length, 2)
  for (const seen of upstream.requests) {
    t.same(valuesOf(seen, 'authorization'), ['Bearer sk-upstream-secret'], 'the upstream sees only the managed key')
    const everything = seen.rawHeaders.join('\n') + '\n' + seen.body.toString('utf8')
    t.notOk(everything.includes('gk-one') || everything.includes('gk-two'), 'no gateway key in anything sent upstream')
  }
})

t.test('managed mode: a missing or wrong key is a 401 and nothing reaches the upstream', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, MANAGED)
  for (const [label, headers, code] of [
    ['no authorization', {}, 'missing_api_key'],
    ['a non-bearer authorization', { authorization: 'Basic Z2stb25lOg==' }, 'missing_api_key'],
    ['a wrong key', { authorization: 'Bearer gk-wrong-guess' }, 'invalid_api_key'],
    ['the upstream key itself', { authorization: 'Bearer sk-upstream-secret' }, 'invalid_api_key'],
    ['a gateway key with something appended', { authorization: 'Bearer gk-one2' }, 'invalid_api_key'],
    ['a prefix of a gateway key', { authorization: 'Bearer gk-on' }, 'invalid_api_key']
  ] as const) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'session-id': 's-denied', ...headers } })
    t.equal(res.statusCode, 401, label)
    t.match(String(res.headers['content-type']), /^application\/json/)
    const text = await res.body.text()
    t.match(JSON.parse(text), { error: { message: String, type: 'authentication_error', code } }, `${label}: ${code}`)
    for (const secret of [...SECRETS, 'gk-wrong-guess', 'Z2stb25lOg==', 'gk-on']) t.notOk(text.includes(secret), `${label}: the body does not echo ${secret}`)
  }
  // A GET and a chat completion are refused just the same.
  t.equal((await request(`${gateway.baseURL}/models`)).statusCode, 401)
  t.equal((await post(gateway, { authorization: 'Bearer nope' }, '/chat/completions')).status, 401)
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
})

t.test('managed mode: the log never holds a key, the upstream one, gateway ones or a client\'s', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { ...MANAGED, LOG_LEVEL: 'trace' })
  upstream.handle(replySse([responseStream('resp_log_keys', 'answer')]))
  t.equal((await post(gateway, { authorization: 'Bearer gk-one' })).status, 200)
  t.equal((await post(gateway, { authorization: 'Bearer gk-two', 'session-id': 's-keys' })).status, 200)
  t.equal((await post(gateway, { authorization: 'Bearer sk-client-passthrough' })).status, 401)
  t.equal((await post(gateway, {})).status, 401)
  upstream.handle(replyJson({ error: { message: 'upstream says no', type: 'server_error' } }, 500))
  t.equal((await post(gateway, { authorization: 'Bearer gk-one' })).status, 500)
  await gateway.waitForLog((line) => line.msg === 'request' && line.status === 500)

  const text = gateway.logText()
  t.ok(text.length > 0, 'the gateway did log')
  for (const secret of [...SECRETS, 'sk-client-passthrough']) t.notOk(text.includes(secret), `the log never contains ${secret}`)
})

t.test('managed mode on a non-loopback HOST needs GATEWAY_API_KEYS, or ALLOW_UNAUTHENTICATED', async (t) => {
  const env = { OPENAI_API_KEY: 'sk-upstream-secret', HOST: '0.0.0.0' }
  const err = (() => {
    try {
      loadConfig({ env })
    } catch (caught) {
      return caught
    }
    return undefined
  })()
  t.type(err, ConfigError, 'refuses to load')
  t.equal((err as ConfigError).key, 'GATEWAY_API_KEYS')
  t.match((err as ConfigError).message, /GATEWAY_API_KEYS/)
  t.notOk((err as ConfigError).message.includes('sk-upstream-secret'), 'the error does not echo the key')
  t.throws(() => loadConfig({ env: { OPENAI_API_KEY: 'sk-upstream-secret' } }), ConfigError, 'the default HOST (0.0.0.0) is not loopback either')

  t.equal(loadConfig({ env: { ...env, ALLOW_UNAUTHENTICATED: 'true' } }).auth.allowUnauthenticated, true, 'loads with ALLOW_UNAUTHENTICATED=true')
  t.same(loadConfig({ env: { ...env, GATEWAY_API_KEYS: 'gk-one' } }).auth.gatewayApiKeys, ['gk-one'], 'loads with gateway keys')
  t.equal(loadConfig({ env: { ...env, HOST: '127.0.0.1' } }).upstream.apiKey, 'sk-upstream-secret', 'loads on loopback')
  t.equal(loadConfig({ env: { HOST: '0.0.0.0' } }).upstream.apiKey, '', 'pass-through mode needs no gateway keys anywhere')
})

t.test('configured upstream headers reach the upstream, replacing a client\'s of the same name', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, {
    UPSTREAM_HEADERS: '{"x-extra":"1","OpenAI-Organization":"org-x"}',
    UPSTREAM_ENV_HEADERS: '{"x-from-env":"MY_VAR","x-unset":"MY_UNSET_VAR"}',
    MY_VAR: 'v'
  })
  const { status } = await post(gateway, { 'X-Extra': 'client-value', 'openai-organization': 'org-client', 'x-from-env': 'client-env', 'x-kept': 'mine' })
  t.equal(status, 200)
  const seen = upstream.requests[0]!
  t.same(valuesOf(seen, 'x-extra'), ['1'], 'x-extra from config, once')
  t.same(valuesOf(seen, 'openai-organization'), ['org-x'], 'OpenAI-Organization from config, once')
  t.same(valuesOf(seen, 'x-from-env'), ['v'], 'x-from-env from MY_VAR, once')
  t.same(valuesOf(seen, 'x-unset'), [], 'a header whose variable is unset is not sent')
  t.same(valuesOf(seen, 'x-kept'), ['mine'], 'other client headers pass')

  const get = await request(`${gateway.baseURL}/models`)
  await get.body.dump()
  t.same(valuesOf(upstream.requests[1]!, 'x-extra'), ['1'], 'on every request, not only POSTs')
})

t.test('managed mode: an authorization in UPSTREAM_HEADERS never makes a second one upstream', async (t) => {
  // Regression: the extra header and the managed key were both appended.
  const { upstream, gateway } = await startGatewayWithUpstream(t, { ...MANAGED, UPSTREAM_HEADERS: '{"Authorization":"Bearer from-config","x-extra":"1"}' })
  t.equal((await post(gateway, { authorization: 'Bearer gk-one' })).status, 200)
  t.same(valuesOf(upstream.requests[0]!, 'authorization'), ['Bearer sk-upstream-secret'], 'the managed key, once')
  t.same(valuesOf(upstream.requests[0]!, 'x-extra'), ['1'], 'other extras still go')
})

t.test('an UPSTREAM_ENV_HEADERS variable holding a line break refuses to start, without echoing it', async (t) => {
  // Regression: the value was taken as is, and every upstream request then failed with a 502.
  const env = { UPSTREAM_ENV_HEADERS: '{"x-from-env":"MY_VAR"}' }
  for (const value of ['secret-value\n', 'secret\r\nx-injected: 1', 'secret\u0000']) {
    const err = (() => {
      try {
        loadConfig({ env: { ...env, MY_VAR: value } })
      } catch (caught) {
        return caught
      }
      return undefined
    })()
    t.type(err, ConfigError, JSON.stringify(value))
    t.equal((err as ConfigError).key, 'MY_VAR', 'names the variable')
    t.notOk((err as ConfigError).message.includes('secret'), 'does not echo its value')
  }
  t.equal(loadConfig({ env: { ...env, MY_VAR: 'tab\tand latin-1 \u00e9' } }).upstream.headers['x-from-env'], 'tab\tand latin-1 \u00e9', 'what HTTP allows in a value loads')
})

t.test('an UPSTREAM_URL query (api-version) is added to every upstream request', async (t) => {
  const upstream = await startMockUpstream(replyJson({ ok: true }))
  const azure = await startGateway({ UPSTREAM_URL: `${upstream.url}?api-version=2025-04-01-preview` })
  t.teardown(async () => { await azure.close(); await upstream.close() })

  t.equal((await post(azure, {})).status, 200)
  await (await request(`${azure.baseURL}/models?limit=2`)).body.dump()
  await (await request(`${azure.baseURL}/responses/resp_1/input_items`)).body.dump()
  t.same(upstream.requests.map((r) => r.url), [
    '/v1/responses?api-version=2025-04-01-preview',
    '/v1/models?limit=2&api-version=2025-04-01-preview',
    '/v1/responses/resp_1/input_items?api-version=2025-04-01-preview'
  ])
})

t.test('regression: GATEWAY_API_KEYS without an upstream key refuses to start, rather than check no key and send clients\' gateway keys upstream', async (t) => {
  // An OPENAI_API_KEY whose secret was not mounted is empty: pass-through mode, where the
  // gateway keys were ignored and each client's went to the upstream as its authorization.
  for (const env of [{ GATEWAY_API_KEYS: 'gk-one' }, { GATEWAY_API_KEYS: 'gk-one', OPENAI_API_KEY: '' }, { GATEWAY_API_KEYS: 'gk-one', HOST: '0.0.0.0' }]) {
    let err: unknown
    try {
      loadConfig({ env })
    } catch (caught) {
      err = caught
    }
    t.type(err, ConfigError, `refuses to load: ${JSON.stringify(env)}`)
    t.equal((err as ConfigError | undefined)?.key, 'GATEWAY_API_KEYS')
    t.match((err as ConfigError | undefined)?.message, /OPENAI_API_KEY/, 'says which key is missing')
    t.notOk((err as ConfigError | undefined)?.message.includes('gk-one'), 'the error does not echo the gateway key')
  }
  t.same(loadConfig({ env: { GATEWAY_API_KEYS: 'gk-one', OPENAI_API_KEY: 'sk-upstream-secret' } }).auth.gatewayApiKeys, ['gk-one'], 'loads in managed mode')
  t.same(loadConfig({ env: { GATEWAY_API_KEYS: ' , ' } }).auth.gatewayApiKeys, [], 'a list of nothing is no keys')
})

t.test('regression: managed mode: a gateway key also sent as api-key (Azure\'s name for it) never goes upstream', async (t) => {
  // Clients written for OpenAI and Azure alike send their key both ways.
  const { upstream, gateway } = await startGatewayWithUpstream(t, MANAGED)
  t.equal((await post(gateway, { authorization: 'Bearer gk-one', 'api-key': 'gk-one', 'API-Key': 'gk-two' })).status, 200)
  const seen = upstream.requests[0]!
  t.same(valuesOf(seen, 'api-key'), [], 'no api-key upstream')
  t.same(valuesOf(seen, 'authorization'), ['Bearer sk-upstream-secret'])
  t.notOk(seen.rawHeaders.join('\n').includes('gk-'), 'no gateway key in any header sent upstream')

  const { upstream: passUpstream, gateway: passThrough } = await startGatewayWithUpstream(t)
  t.equal((await post(passThrough, { 'api-key': 'sk-client-own' })).status, 200)
  t.same(valuesOf(passUpstream.requests[0]!, 'api-key'), ['sk-client-own'], 'pass-through mode still sends the client\'s api-key unchanged')
})
