/**
 * Upstream settings that cannot do anything are said so at start, in a warn line naming the key,
 * and the gateway still starts: `probe_path` on the only upstream of a list (one upstream is
 * not judged, so it is never probed), and `probe_interval_ms` / `probe_timeout_ms` on an
 * upstream without `probe_path`; `weight`, `group` and `routing.*` with one upstream. Before,
 * all were accepted and silently did nothing. An upstream url without a path (a forgotten `/v1`)
 * is said so too.
 * Runs the built CLI (`npm run build` first when run alone).
 */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js'
import type { LogLine } from '../support/log-lines.js'
import { replyJson, startMockUpstream, type UpstreamHandler } from '../support/mock-upstream.js'

function startCli (t: Test, upstreams: unknown[]): GatewayProcess {
  return startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', UPSTREAMS: JSON.stringify(upstreams) })
}

/** Start-up warnings about settings: all written before the 'listening' line, so complete once it is. */
async function settingWarnings (gateway: GatewayProcess): Promise<LogLine[]> {
  await gateway.port()
  return gateway.logs.filter((line) => line.setting !== undefined)
}

/** Its probe path fails, its model route answers: were it probed and judged, it would be ejected. */
const failedProbe = replyJson({ error: { message: 'down for probes' } }, 503)
const answered = replyJson({ ok: true })
const probeFailsRequestsAnswer: UpstreamHandler = async (req, res, raw) => {
  await (req.method === 'GET' ? failedProbe : answered)(req, res, raw)
}

t.test('probe_path on the only upstream: a warn line at start says it has no effect and why; the upstream still takes every request', async (t) => {
  const upstream = await startMockUpstream(probeFailsRequestsAnswer)
  t.teardown(upstream.close)
  const gateway = startCli(t, [{ name: 'only', url: upstream.url, probe_path: '/models', probe_interval_ms: 100 }])

  const warnings = await settingWarnings(gateway)
  t.equal(warnings.length, 1, 'one line')
  t.match(warnings[0], { level: 'warn', setting: 'UPSTREAMS[0].probe_path', msg: /^config UPSTREAMS\[0\]\.probe_path: has no effect with a single upstream: / })
  t.match(String(warnings[0]?.msg), /never probed/, 'it says what does not happen')
  t.match(String(warnings[0]?.msg), /list a second upstream/, 'and what to do about it')

  const origin = `http://127.0.0.1:${await gateway.port()}`
  const res = await request(`${origin}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","input":"hi"}' })
  t.equal(res.statusCode, 200, 'requests go to it')
  await res.body.dump()
  const ready = await request(`${origin}/readyz`)
  t.same(await ready.body.json(), { status: 'ready', store: { kind: 'memory', state: 'ok' } }, '/readyz does not judge it, as the warning says')
  const metrics = await (await request(`${origin}/metrics`)).body.text()
  t.match(metrics, /^session_gateway_upstream_healthy\{upstream="only"\} 1$/m, 'its health gauge stays 1')
})

t.test('probe_interval_ms or probe_timeout_ms without probe_path: a warn line for each, naming its key; with probe_path, none', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const gateway = startCli(t, [
    { name: 'passive', url: upstream.url, probe_interval_ms: 2_000, probe_timeout_ms: 1_000 },
    { name: 'probed', url: upstream.url, probe_path: '/models', probe_interval_ms: 60_000, probe_timeout_ms: 1_000 }
  ])

  const warnings = await settingWarnings(gateway)
  t.same(warnings.map((line) => line.setting), ['UPSTREAMS[0].probe_interval_ms', 'UPSTREAMS[0].probe_timeout_ms'], 'the passive upstream\'s two keys, not the probed one\'s')
  for (const line of warnings) {
    t.match(line, { level: 'warn', msg: /has no effect without probe_path: "passive" is not probed/ })
  }
})

t.test('weight and group on the only upstream, and routing.* with one upstream: a warn line for each key; requests still go to it', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const gateway = startGatewayProcess(t, {
    HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', UPSTREAM_MAX_ATTEMPTS: '5',
    UPSTREAMS: JSON.stringify([{ name: 'only', url: upstream.url, weight: 4, group: 'pool' }])
  })
  const warnings = await settingWarnings(gateway)
  t.same(warnings.map((line) => line.setting), ['UPSTREAMS[0].weight', 'UPSTREAMS[0].group', 'UPSTREAM_MAX_ATTEMPTS'])
  for (const line of warnings) t.match(line, { level: 'warn', msg: /has no effect with a single upstream/ })
  const res = await request(`http://127.0.0.1:${await gateway.port()}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","input":"hi"}' })
  t.equal(res.statusCode, 200, 'the gateway started and serves')
  await res.body.dump()
})

t.test('a single upstream without probe settings, and UPSTREAM_URL alone: no warning', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  t.same(await settingWarnings(startCli(t, [{ name: 'sglang', url: upstream.url, headers: { 'x-smg-routing-key': '{session}' } }])), [])
  const plain = startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', UPSTREAM_URL: upstream.url })
  t.same(await settingWarnings(plain), [])
})

t.test('UPSTREAM_URL without a path: a warn line at start says where requests will go, and the gateway sends them there', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const origin = new URL(upstream.url).origin
  const gateway = startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', UPSTREAM_URL: origin })
  const warnings = await settingWarnings(gateway)
  t.same(warnings.map((line) => line.setting), ['UPSTREAM_URL'])
  t.match(warnings[0], { level: 'warn', msg: `config UPSTREAM_URL: has no path, so /v1/responses is sent to ${origin}/responses; OpenAI and most compatible servers serve /v1 (${origin}/v1): add the path, or ignore this if "default" serves the API at its root` })
  const res = await request(`http://127.0.0.1:${await gateway.port()}/v1/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  await res.body.dump()
  t.equal(upstream.requests.at(-1)?.url, '/responses', 'a warning, not a refusal: the request went to the root as configured')
})
