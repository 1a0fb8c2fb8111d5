/**
 * Health probes ask what requests ask: an upstream `url` with a query (Azure's
 * `?api-version=…`) has it on its probe too, as on every proxied request; a `probe_path` with
 * a query of its own keeps it, and its own value of a parameter the url also sets. Checked at
 * mock upstreams that record each request line as it arrived.
 */
import http from 'node:http'
import t from 'tap'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { received, replyJson, startMockUpstream, type RecordedRequest } from '../support/mock-upstream.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

const requestLine = (req: RecordedRequest): string => `${req.method} ${req.url}`
const isProbe = (req: RecordedRequest): boolean => req.method === 'GET'

/** A POST /v1/responses for `session`; resolves with its status once answered. */
async function post (gateway: RunningGateway, session: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'session-id': session } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ model: 'gpt-5-deployment', input: 'hi' }))
  })
}

t.test("a probe carries its upstream url's query, merged with probe_path's own, as proxied requests carry it", async (t) => {
  const names = ['azure', 'own-query', 'plain']
  const [azure, ownQuery, plain] = await Promise.all(names.map(async () => await startMockUpstream(replyJson({ object: 'list', data: [] }))))
  for (const upstream of [azure!, ownQuery!, plain!]) t.teardown(upstream.close)
  const every = { probe_interval_ms: 100 }
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([
      { name: 'azure', url: `${azure!.origin}/openai/v1?api-version=2025-04-01-preview`, probe_path: '/models', ...every },
      { name: 'own-query', url: `${ownQuery!.origin}/openai/v1?api-version=2025-04-01-preview&tenant=t%201`, probe_path: '/models?limit=1&api-version=2024-10-21', ...every },
      { name: 'plain', url: `${plain!.origin}/v1`, probe_path: '/models?limit=1', ...every }
    ])
  })
  t.teardown(gateway.close)

  t.equal(requestLine(await received(azure!, isProbe)), 'GET /openai/v1/models?api-version=2025-04-01-preview', "the url's api-version is on the probe")
  t.equal(requestLine(await received(ownQuery!, isProbe)), 'GET /openai/v1/models?limit=1&api-version=2024-10-21&tenant=t%201',
    "probe_path's own query first, its own api-version instead of the url's, then the url's other parameters as written")
  t.equal(requestLine(await received(plain!, isProbe)), 'GET /v1/models?limit=1', 'a url without a query adds none')

  const [session] = sessionsHomedOn('azure', names, 1, 'probe-query')
  t.equal(await post(gateway, session!), 200)
  const call = await received(azure!, (req) => req.method === 'POST')
  t.equal(requestLine(call), 'POST /openai/v1/responses?api-version=2025-04-01-preview', 'a proxied request on the same upstream carries the same query')
})
