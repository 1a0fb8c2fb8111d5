/**
 * The routing recipes of docs/routing.md as the page shows them: each YAML block is read out of
 * the page, loaded into a gateway (`--config`) with only its hosts pointed at mock upstreams,
 * and what the recipe promises is checked where it lands, at the upstream.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { loadConfig } from '../../src/config/load-config.js'
import { gatewayFromRecipe, recipeKeys, routingRecipe, routingRecipes } from '../support/doc-recipes.js'
import type { RunningGateway } from '../support/gateway.js'
import { received, type MockUpstream, type RecordedRequest, type UpstreamHandler } from '../support/mock-upstream.js'

/** Answers like the Responses API, with an id that names the host that answered. */
function responsesFrom (host: string): UpstreamHandler {
  let served = 0
  return (req, res) => {
    const text = req.method === 'GET'
      ? JSON.stringify({ object: 'list', data: [] })
      : JSON.stringify({ id: `resp_${host.replace(/\W/g, '_')}_${++served}`, object: 'response', usage: { input_tokens: 10, output_tokens: 2 } })
    res.writeHead(200, { 'content-type': 'application/json', 'x-host': host }).end(text)
  }
}

interface Sent { status: number, host: string | undefined, json: Record<string, unknown> }

async function post (gateway: RunningGateway, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Sent> {
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: res.statusCode, host: res.headers['x-host'] as string | undefined, json: await res.body.json() as Record<string, unknown> }
}

const modelCalls = (upstream: MockUpstream): RecordedRequest[] => upstream.requests.filter((r) => r.method === 'POST')

t.test('every recipe on the page loads as a configuration, as written', async (t) => {
  const recipes = routingRecipes()
  t.ok(recipes.size >= 7, `${recipes.size} recipes`)
  for (const [title, yaml] of recipes) {
    const dir = mkdtempSync(join(tmpdir(), 'recipe-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'gateway.yaml')
    writeFileSync(file, yaml)
    const config = loadConfig({ file, env: { HOST: '127.0.0.1', ...recipeKeys(yaml) } })
    t.ok(config.upstreams.length > 0, `${title}: ${config.upstreams.map((u) => u.name).join(', ')}`)
  }
})

t.test('Azure OpenAI: /openai/v1/responses on each resource, with that resource key as a bearer token; the client key reaches none', async (t) => {
  const recipe = routingRecipe('Azure OpenAI')
  const keys = recipeKeys(recipe)
  t.same(Object.keys(keys), ['AZURE_EAST_KEY', 'AZURE_WEST_KEY'])
  const { gateway, upstreams } = await gatewayFromRecipe(t, recipe, keys, responsesFrom)
  const east = upstreams.get('east.openai.azure.com')!
  const west = upstreams.get('west.openai.azure.com')!
  const body = { model: 'gpt-5-deployment', input: 'hi' }
  for (let i = 0; i < 20; i++) t.equal((await post(gateway, body, { authorization: 'Bearer gw-key-1', 'session-id': `azure-${i}` })).status, 200)
  t.ok(modelCalls(east).length > 0 && modelCalls(west).length > 0, `sessions on both resources (${modelCalls(east).length}, ${modelCalls(west).length})`)
  for (const [upstream, key] of [[east, 'key-of-AZURE_EAST_KEY'], [west, 'key-of-AZURE_WEST_KEY']] as const) {
    for (const seen of modelCalls(upstream)) {
      t.equal(seen.url, '/openai/v1/responses', 'the v1 path, no api-version')
      t.equal(seen.headers.authorization, `Bearer ${key}`, "the resource's own key")
      t.equal(seen.headers['api-key'], undefined)
      t.same(JSON.parse(seen.body.toString()), body, 'the body, deployment name in model, unchanged')
    }
  }
  for (let i = 0; i < 4; i++) {
    const first = await post(gateway, { ...body, prompt_cache_key: `azure-chain-${i}` }, { authorization: 'Bearer gw-key-1' })
    const next = await post(gateway, { ...body, previous_response_id: first.json.id }, { authorization: 'Bearer gw-key-1' })
    t.equal(next.host, first.host, `a chain continues on the resource that stored ${String(first.json.id)}`)
  }
  const before = east.requests.length + west.requests.length
  t.equal((await post(gateway, body, { authorization: 'Bearer sk-client-own-key' })).status, 401, 'clients must present a gateway key')
  t.equal(east.requests.length + west.requests.length, before, 'and a refused request reaches no resource')
  t.notOk(gateway.logText().includes('key-of-AZURE'), 'no resource key in the logs')
})

t.test('a vLLM fleet: each session stays on one instance, its chain goes where it was stored, probes ask /v1/models', async (t) => {
  // As written, but probed every 100 ms instead of the default 10 s: the test checks the probe's
  // path, and would otherwise wait 10 s for the first one.
  const recipe = routingRecipe('A vLLM fleet')
  const probed = recipe.replaceAll('probe_path: /models }', 'probe_path: /models, probe_interval_ms: 100 }')
  t.equal(probed.split('probe_interval_ms: 100').length - 1, 2, 'both instances of the recipe get the short interval')
  const { gateway, upstreams } = await gatewayFromRecipe(t, probed, {}, responsesFrom)
  const hostOf = new Map<string, string>()
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 10; i++) {
      const answer = await post(gateway, { model: 'qwen', input: 'hi' }, { 'session-id': `vllm-${i}` })
      t.equal(answer.status, 200)
      if (round === 0) hostOf.set(`vllm-${i}`, answer.host!)
      else t.equal(answer.host, hostOf.get(`vllm-${i}`), `vllm-${i} stays on ${hostOf.get(`vllm-${i}`)}`)
    }
  }
  t.equal(new Set(hostOf.values()).size, 2, 'sessions spread over both instances')
  for (const upstream of upstreams.values()) for (const seen of modelCalls(upstream)) t.equal(seen.url, '/v1/responses')
  for (let i = 0; i < 4; i++) {
    const first = await post(gateway, { model: 'qwen', input: 'hi', prompt_cache_key: `chain-${i}` })
    const next = await post(gateway, { model: 'qwen', input: 'more', previous_response_id: first.json.id })
    t.equal(next.host, first.host, `a chain continues on the instance that stored ${String(first.json.id)}`)
  }
  // Each instance's probe asks the path under url.
  for (const [host, upstream] of upstreams) t.equal((await received(upstream, (r) => r.method === 'GET')).url, '/v1/models', `${host} probed at /v1/models`)
})

for (const [title, header] of [['vLLM production-stack', 'x-session-id'], ['SGLang', 'x-smg-routing-key']] as const) {
  t.test(`${title}: every request carries ${header}: <session>`, async (t) => {
    const { gateway, upstreams } = await gatewayFromRecipe(t, routingRecipe(title), {}, responsesFrom)
    const [router] = [...upstreams.values()]
    t.equal(upstreams.size, 1)
    for (let i = 0; i < 5; i++) t.equal((await post(gateway, { model: 'm', input: 'hi' }, { 'session-id': `router-${i}` })).status, 200)
    const fromBody = await post(gateway, { model: 'm', input: 'hi', prompt_cache_key: 'cache-key-1' })
    t.equal(fromBody.status, 200)
    const calls = modelCalls(router!)
    t.same(calls.slice(0, 5).map((r) => r.headers[header]), [0, 1, 2, 3, 4].map((i) => `router-${i}`), 'the session the client named')
    t.equal(calls[5]!.headers[header], calls[5]!.headers['session-id'], 'a session decided from the body: the same id the gateway sends as session-id')
    t.ok(String(calls[5]!.headers[header]).length > 0)
    for (const seen of calls) t.equal(seen.url, '/v1/responses')
  })
}
