/**
 * Several upstreams (issue 12), against mock upstreams that are separate processes, killed and
 * restarted for real: session affinity, weights, lineage within a group, failover before the
 * first byte, per-upstream keys and header templates, WebSocket handshake failover.
 */
import { spawnSync } from 'node:child_process'
import http from 'node:http'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { KEY_REFUSED_LINE } from '../../src/proxy/attempts.js'
import { conversationSessionId } from '../../src/session/resolve-session.js'
import { rendezvousOrder } from '../../src/upstream/rendezvous.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { needs } from '../support/needs.js'
import { until } from '../support/polling.js'
import { rawWebSocket } from '../support/raw-websocket.js'
import { startRedis } from '../support/redis-server.js'
import { holdStream } from '../support/steady-traffic.js'
import { sessionsHomedOn, startUpstreamProcesses, type UpstreamProcess } from '../support/upstream-process.js'

interface Answer { status: number, upstream: string | undefined, json: Record<string, unknown> }

/** A POST /v1/responses on a connection of its own (no keep-alive), so no connection session. */
async function send (gateway: RunningGateway, { session, body = {}, headers = {} }: { session?: string, body?: Record<string, unknown>, headers?: Record<string, string> } = {}): Promise<Answer> {
  const payload = JSON.stringify({ model: 'gpt-test', input: 'hi', ...body })
  return await sendTo(gateway, 'POST', '/v1/responses', payload, { 'content-type': 'application/json', ...(session === undefined ? {} : { 'session-id': session }), ...headers })
}

/** Any request on a connection of its own: no connection session carries over. */
async function sendTo (gateway: RunningGateway, method: string, path: string, payload?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${gateway.origin}${path}`, { method, agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
        resolve({ status: res.statusCode ?? 0, upstream: json.upstream as string | undefined, json })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

function upstreamsEnv (ups: UpstreamProcess[], extra: Record<string, Record<string, unknown>> = {}): string {
  return JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url, ...extra[u.name] })))
}

/**
 * Polls /readyz until the Redis store says ok: it connects on its client's own events, which a
 * test cannot hook (as in redis-sessions.test.ts).
 */
async function storeReady (gateway: RunningGateway): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { store: { state: string } }
    if (ready.store.state === 'ok') return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('the Redis store never became ready')
}

/** One upstream's state as /readyz reports it: `healthy` or `ejected`. */
async function upstreamState (gateway: RunningGateway, name: string): Promise<string | undefined> {
  const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string }> }
  return ready.upstreams.find((u) => u.name === name)?.state
}

async function metric (gateway: RunningGateway, line: string): Promise<number> {
  const text = await (await fetch(`${gateway.origin}/metrics`)).text()
  const found = text.split('\n').find((l) => l.startsWith(line + ' '))
  return found === undefined ? NaN : Number(found.split(' ').at(-1))
}

/** Two gateways routing over upstream processes named `names`, sharing one real redis-server, both connected. */
async function replicasOverRedis (t: Test, names: string[]): Promise<{ ups: UpstreamProcess[], one: RunningGateway, two: RunningGateway }> {
  const redis = await startRedis()
  t.teardown(redis.close)
  const ups = await startUpstreamProcesses(t, names)
  const env = { UPSTREAMS: upstreamsEnv(ups), REDIS_URL: redis.url }
  const one = await startGateway(env)
  const two = await startGateway(env)
  t.teardown(async () => { await one.close(); await two.close() })
  for (const gateway of [one, two]) await storeReady(gateway)
  return { ups, one, two }
}

/**
 * A conversation created through `gateway` (POST /v1/conversations, on a fresh connection) whose
 * own session (derived from its id) rendezvous would place on another upstream than the one that
 * created it; `placed` is that other upstream.
 */
async function conversationPlacedElsewhere (t: Test, gateway: RunningGateway, ups: UpstreamProcess[]): Promise<{ created: Answer, placed: string }> {
  for (;;) {
    const created = await sendTo(gateway, 'POST', '/v1/conversations', '{}', { 'content-type': 'application/json' })
    t.equal(created.status, 200)
    const placed = rendezvousOrder(conversationSessionId(String(created.json.id)), ups.map((u) => ({ name: u.name, weight: 1 })))[0]!.name
    if (placed !== created.upstream) return { created, placed }
  }
}

t.test('affinity: one session over 50 fresh connections reaches one upstream; 1,000 sessions spread by weight', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups, { b: { weight: 2 } }) })
  t.teardown(gateway.close)
  const seen = new Set<string>()
  for (let i = 0; i < 50; i++) {
    const answer = await send(gateway, { session: 'affine-1' })
    t.equal(answer.status, 200)
    seen.add(answer.upstream!)
  }
  t.equal(seen.size, 1, `all 50 on one upstream (${[...seen].join(', ')})`)

  const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
  for (let i = 0; i < 1000; i += 50) {
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, j) => await send(gateway, { session: `spread-${i + j}` })))
    for (const answer of answers) counts[answer.upstream!]!++
  }
  // Weights 1, 2, 1: a quarter, a half, a quarter, within 5 percentage points (3.5 standard deviations).
  t.ok(Math.abs(counts.a! / 1000 - 0.25) < 0.05, `a: ${counts.a}`)
  t.ok(Math.abs(counts.b! / 1000 - 0.5) < 0.05, `b: ${counts.b}`)
  t.ok(Math.abs(counts.c! / 1000 - 0.25) < 0.05, `c: ${counts.c}`)
  t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'affine-1'), { upstream: seen.values().next().value })
})

t.test('two gateways without shared state pick the same upstream for the same session', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  const one = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  const two = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(async () => { await one.close(); await two.close() })
  for (let i = 0; i < 20; i++) {
    const session = `replica-${i}`
    t.equal((await send(one, { session })).upstream, (await send(two, { session })).upstream, session)
  }
})

t.test('failover: a killed upstream tears its streams, its sessions move without a failed request, and stay moved after it returns', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  // Passive health only: the requests below are what finds the killed upstream, failing over.
  // (Active probes would race them and could eject it first: then nothing fails over.)
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const sessions = Array.from({ length: 30 }, (_, i) => `steady-${i}`)
  const home = new Map<string, string>()
  for (const session of sessions) home.set(session, (await send(gateway, { session })).upstream!)
  const victim = home.get('steady-0')!
  const onVictim = sessions.filter((s) => home.get(s) === victim)
  const other = sessions.find((s) => home.get(s) !== victim)!
  const heldOnVictim = await holdStream(gateway, onVictim[0]!)
  const heldElsewhere = await holdStream(gateway, other)
  t.equal(heldOnVictim.upstream, victim)

  await ups.find((u) => u.name === victim)!.kill()
  t.equal(await heldOnVictim.ended, 'torn', 'the stream flowing from the killed upstream is torn')
  const answers = await Promise.all(sessions.map(async (session) => await send(gateway, { session })))
  t.same(answers.filter((a) => a.status !== 200), [], '0 client-visible failures')
  const moved = new Map(sessions.map((s, i) => [s, answers[i]!.upstream!]))
  for (const session of sessions) {
    if (home.get(session) === victim) t.not(moved.get(session), victim, `${session} moved`)
    else t.equal(moved.get(session), home.get(session), `${session} stayed`)
  }
  t.ok(await metric(gateway, 'session_gateway_session_rebinds_total{reason="failover"}') >= 1, 'rebinds counted')
  t.ok(gateway.logs.some((l) => l.msg === 'request' && l.attempts === 2), 'a failed-over request logs its attempts')

  await ups.find((u) => u.name === victim)!.restart()
  for (const session of onVictim) t.equal((await send(gateway, { session })).upstream, moved.get(session), `${session} stays where it moved`)
  const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string }> }
  t.equal(ready.upstreams.length, 3, '/readyz lists each upstream')
  heldElsewhere.close()
  t.equal(await heldElsewhere.ended, 'torn', 'closed by the test: the stream from a live upstream was never cut')
})

t.test('active probe: a killed upstream is ejected by its failing probes; restarted, the first probe that answers ends the ejection and it takes new sessions again', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  const victim = ups[0]!
  // A cooldown longer than the test: only a probe that answers can end the ejection. (With the
  // default 5 s, a restart slower than the cooldown found the upstream healthy already, and no
  // probe ever ended an ejection: the wait for its log line never ended.)
  const gateway = await startGateway({
    UPSTREAMS: upstreamsEnv(ups, { [victim.name]: { probe_path: '/models', probe_interval_ms: 500 } }),
    UPSTREAM_COOLDOWN_MS: '600000',
    UPSTREAM_MAX_COOLDOWN_MS: '600000'
  })
  t.teardown(gateway.close)
  await victim.kill()
  await until(async () => await upstreamState(gateway, victim.name), (state) => state === 'ejected', 'ejected by its failing probes')
  await victim.restart()
  await gateway.waitForLog((l) => l.msg === 'upstream back: its health probe answered' && l.upstream === victim.name)
  t.equal(await upstreamState(gateway, victim.name), 'healthy', 'the ejection ended, long before its cooldown')
  let landed = 0
  for (let i = 0; i < 30; i++) if ((await send(gateway, { session: `fresh-${i}` })).upstream === victim.name) landed++
  t.ok(landed > 0, `new sessions reach the restarted upstream again (${landed} of 30)`)
})

t.test('a 5xx before any byte is retried on the next upstream, and counted against the one that failed', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const first = await send(gateway, { session: 'retry-1' })
  const bad = ups.find((u) => u.name === first.upstream)!
  await bad.setMode({ status: 503 })
  const after503 = await send(gateway, { session: 'retry-1' })
  t.equal(after503.status, 200)
  t.not(after503.upstream, bad.name, 'served by the other upstream')
  t.equal(await metric(gateway, `session_gateway_upstream_errors_total{kind="status",upstream="${bad.name}"}`), 1)
  t.equal((await send(gateway, { session: 'retry-1' })).upstream, after503.upstream, 'the session was rebound: it goes there directly')
  t.equal(bad.requests.length, 2, 'and not to the failing upstream first')
})

t.test("managed mode: a 401 or 403 is tried on the next upstream but ejects none; in pass-through mode the client's 401 is relayed", async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const [a, b] = ups as [UpstreamProcess, UpstreamProcess]
  const managed = await startGateway({ GATEWAY_API_KEYS: 'gw-client-key', UPSTREAMS: upstreamsEnv(ups, { a: { api_key: 'sk-revoked' }, b: { api_key: 'sk-good' } }), UPSTREAM_FAILURES_TO_EJECT: '2' })
  t.teardown(managed.close)
  const homedOnA = sessionsHomedOn('a', ['a', 'b'], 2, 'revoked-key')
  const gatewayKey = { authorization: 'Bearer gw-client-key' }
  await a.setMode({ status: 401 })
  const first = await send(managed, { session: homedOnA[0], headers: gatewayKey })
  t.same([first.status, first.upstream], [200, 'b'], "a refused its key: the request went on to b")
  t.equal((await send(managed, { session: homedOnA[0], headers: gatewayKey })).upstream, 'b')
  t.equal(a.requests.length, 1, 'the session was rebound to b: its next request went there directly')
  await a.setMode({ status: 403 })
  t.same(await send(managed, { session: homedOnA[1], headers: gatewayKey }).then((answer) => [answer.status, answer.upstream]), [200, 'b'], 'a 403 (a project without access) too')
  t.equal(a.requests.length, 2)
  t.equal(await metric(managed, 'session_gateway_upstream_errors_total{kind="status",upstream="a"}'), 2, 'both counted against a')
  t.equal(await upstreamState(managed, 'a'), 'healthy', 'but not toward its ejection (UPSTREAM_FAILURES_TO_EJECT is 2)')
  t.same(managed.logs.filter((line) => line.msg === KEY_REFUSED_LINE).map((line) => [line.level, line.upstream, line.status]), [['warn', 'a', 401]], 'one warn line says so, once a minute per upstream')

  // A client can draw 401s itself (an OpenAI-Organization header of another organization):
  // each upstream refuses it, the last refusal is relayed, and no upstream is ejected.
  await a.setMode({ status: 401 })
  await b.setMode({ status: 401 })
  for (let i = 0; i < 3; i++) t.equal((await send(managed, { session: `wrong-org-${i}`, headers: gatewayKey })).status, 401)
  t.same([await upstreamState(managed, 'a'), await upstreamState(managed, 'b')], ['healthy', 'healthy'], 'three refused requests eject nothing')
  t.equal((await (await fetch(`${managed.origin}/readyz`)).status), 200)

  const passThrough = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(passThrough.close)
  await b.setMode({ status: 200 })
  const refused = await send(passThrough, { session: homedOnA[0], headers: { authorization: 'Bearer sk-client-own' } })
  t.same([refused.status, refused.upstream], [401, undefined], "the client's own key refused: its 401, not retried elsewhere")
  t.match(refused.json, { error: { message: 'a says 401' } })
  t.equal(b.requests.filter((r) => r.headers.authorization === 'Bearer sk-client-own').length, 0, 'b never got it')
})

t.test('UPSTREAM_REPLAY_BODY_BYTES=0: a request with a body is not sent again, even one read whole to decide its session', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups), UPSTREAM_REPLAY_BODY_BYTES: '0' })
  t.teardown(gateway.close)
  for (const u of ups) await u.setMode({ status: 503 })
  const fromHeader = await send(gateway, { session: 'no-replay-1' })
  const fromBody = await send(gateway, { body: { prompt_cache_key: 'no-replay-2' } })
  t.equal(fromHeader.status, 503, "the upstream's answer, not retried")
  t.equal(fromBody.status, 503, 'a body read for its session is not retried either')
  t.equal(ups[0]!.requests.length + ups[1]!.requests.length, 2, 'one attempt each')
})

t.test('a body past UPSTREAM_REPLAY_BODY_BYTES goes to the next upstream when the first refused the connection: none of it was read', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups), UPSTREAM_REPLAY_BODY_BYTES: '1024' })
  t.teardown(gateway.close)
  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'streamed-retry')
  await ups[0]!.kill() // its port refuses connections: undici never reads the body
  const input = 'x'.repeat(64 * 1024) // streamed to the upstream, not held for a replay
  const answer = await send(gateway, { session, body: { input } })
  t.equal(answer.status, 200, 'answered, not a 502')
  t.equal(answer.upstream, 'b', 'by the next upstream')
  t.equal(JSON.parse(ups[1]!.requests.at(-1)!.body).input, input, 'which got the whole body')

  await ups[0]!.restart()
  await ups[1]!.setMode({ status: 503 })
  const read = await send(gateway, { session: sessionsHomedOn('b', ['a', 'b'], 1, 'streamed-no-retry')[0], body: { input } })
  t.equal(read.status, 503, 'a streamed body an upstream read and refused is not sent again: its answer is relayed')
  t.equal(ups[0]!.requests.length, 0, 'nothing went to the other upstream')
})

t.test('a body past UPSTREAM_REPLAY_BODY_BYTES read whole to decide its session goes to the next upstream when the first refused the connection', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups), UPSTREAM_REPLAY_BODY_BYTES: '1024' })
  t.teardown(gateway.close)
  // No session header: the body is read whole for its prompt_cache_key, whose session is homed on `a`.
  let key: string | undefined
  for (let i = 0; key === undefined && i < 64; i++) {
    if ((await send(gateway, { body: { prompt_cache_key: `read-past-limit-${i}` } })).upstream === 'a') key = `read-past-limit-${i}`
  }
  if (key === undefined) throw new Error('none of 64 prompt_cache_keys was homed on upstream a')
  await ups[0]!.kill()
  const input = 'x'.repeat(64 * 1024)
  const answer = await send(gateway, { body: { prompt_cache_key: key, input } })
  t.equal(answer.status, 200, 'answered, not a 502')
  t.equal(answer.upstream, 'b', 'by the next upstream')
  t.equal(JSON.parse(ups[1]!.requests.at(-1)!.body).input, input, 'which got the whole body')

  await ups[1]!.setMode({ status: 503 })
  const read = await send(gateway, { body: { prompt_cache_key: `${key}-again`, input } })
  t.equal(read.status, 503, 'one an upstream took and answered with a 503 is not sent again: its answer is relayed')
})

t.test("a 429 is retried elsewhere and ejects its upstream for at least its retry-after", async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups), UPSTREAM_FAILURES_TO_EJECT: '1' })
  t.teardown(gateway.close)
  const first = await send(gateway, { session: 'retry-2' })
  const limited = ups.find((u) => u.name === first.upstream)!
  await limited.setMode({ status: 429, retryAfter: 120 })
  const after429 = await send(gateway, { session: 'retry-2' })
  t.equal(after429.status, 200)
  t.not(after429.upstream, limited.name)
  const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { status: string, upstreams: Array<{ name: string, state: string, ejected_for_ms?: number }> }
  t.equal(ready.status, 'ready', 'ready while one upstream is healthy')
  const state = ready.upstreams.find((u) => u.name === limited.name)!
  t.equal(state.state, 'ejected')
  t.ok(state.ejected_for_ms! > 60_000, `retry-after honoured as the least cooldown (${state.ejected_for_ms} ms left; the default cooldown is 5,000)`)
  t.equal(await metric(gateway, `session_gateway_upstream_healthy{upstream="${limited.name}"}`), 0)
  t.equal(await metric(gateway, 'session_gateway_session_rebinds_total{reason="failover"}'), 1)
})

t.test('lineage: previous_response_id goes where its response was served, across connections; never to another group', async (t) => {
  const ups = await startUpstreamProcesses(t, ['g1-a', 'g1-b', 'g2-a'])
  const env = {
    UPSTREAMS: upstreamsEnv(ups, { 'g1-a': { group: 'one' }, 'g1-b': { group: 'one' }, 'g2-a': { group: 'two' } }),
    UPSTREAM_FAILURES_TO_EJECT: '1'
  }
  const gateway = await startGateway(env)
  t.teardown(gateway.close)
  // Find a first response served in group one (no session header: the body decides).
  let first: Answer | undefined
  for (let i = 0; first === undefined || !first.upstream!.startsWith('g1'); i++) first = await send(gateway, { body: { prompt_cache_key: `chain-${i}` } })
  const chained = await send(gateway, { body: { previous_response_id: first.json.id } })
  t.equal(chained.upstream, first.upstream, 'the chain lands where its first response was served')

  for (const u of ups.filter((u) => u.name.startsWith('g1'))) await u.kill()
  const g2Before = ups.find((u) => u.name === 'g2-a')!.requests.length
  const failed = await send(gateway, { body: { previous_response_id: chained.json.id } })
  t.equal(failed.status, 502, 'its group failed: the gateway says so')
  const refused = await send(gateway, { body: { previous_response_id: chained.json.id } })
  t.equal(refused.status, 503)
  t.match(refused.json, { error: { code: 'upstream_unavailable', message: /group "one"/ } })
  t.equal(ups.find((u) => u.name === 'g2-a')!.requests.length, g2Before, 'nothing went to the other group')
  t.equal((await send(gateway, { body: { prompt_cache_key: 'fresh' } })).upstream, 'g2-a', 'a request without lineage still goes to the healthy group')
})

/**
 * A session (decided by its prompt_cache_key) served by `a` fails over to `b` while `a` is
 * down; `a` comes back. Each upstream is its own group (the default): a response exists only
 * on the upstream that produced it.
 */
async function strandedChain (t: Test, gateway: RunningGateway, ups: UpstreamProcess[], label: string, other: RunningGateway = gateway): Promise<{ first: Answer, moved: Answer, key: string }> {
  let first: Answer | undefined
  let key = ''
  for (let i = 0; first?.upstream !== 'a'; i++) {
    key = `${label}-${i}`
    first = await send(gateway, { body: { prompt_cache_key: key } })
  }
  const a = ups.find((u) => u.name === 'a')!
  await a.kill()
  const moved = await send(gateway, { body: { prompt_cache_key: key } })
  t.equal(moved.upstream, 'b', 'a request without lineage failed over to the other group')
  await a.restart()
  t.equal((await send(other, { body: { prompt_cache_key: key } })).upstream, 'b', 'and the session stays there')
  return { first, moved, key }
}

t.test('a session that failed over to another group still sends the responses it produced before to the upstream that holds them', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const { first, moved, key } = await strandedChain(t, gateway, ups, 'stranded')
  // Before: the chain followed its session to b, which answers for a response it never made.
  const chained = await send(gateway, { body: { previous_response_id: first.json.id } })
  t.equal(chained.status, 200)
  t.equal(chained.upstream, 'a', 'continued where its response exists')
  t.equal(await metric(gateway, 'session_gateway_session_rebinds_total{reason="lineage"}'), 1, 'the session moved back with it')
  t.equal((await send(gateway, { body: { previous_response_id: chained.json.id } })).upstream, 'a', 'and the chain goes on there')
  t.equal((await sendTo(gateway, 'GET', `/v1/responses/${String(moved.json.id)}`)).upstream, 'b', 'a response made during the failover is still read where it was made')
  t.equal((await send(gateway, { body: { prompt_cache_key: key } })).upstream, 'a', 'reading it moved nothing: the session stays where its chain went on')
  t.equal(await metric(gateway, 'session_gateway_session_rebinds_total{reason="lineage"}'), 1)
  t.equal((await sendTo(gateway, 'GET', `/v1/responses/${String(first.json.id)}`)).upstream, 'a')
})

t.test('a session its header decided (codex) sends a response it produced before a failover to the upstream that holds it', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'header-stranded')
  const first = await send(gateway, { session })
  t.equal(first.upstream, 'a')
  const a = ups.find((u) => u.name === 'a')!
  await a.kill()
  t.equal((await send(gateway, { session })).upstream, 'b', 'it failed over to the other group')
  await a.restart()
  t.equal((await send(gateway, { session })).upstream, 'b', 'and stays there')
  // Before: its header decided it and its body was never read, so this went to b as well.
  const chained = await send(gateway, { session, body: { previous_response_id: first.json.id } })
  t.equal(chained.status, 200)
  t.equal(chained.upstream, 'a', 'continued where its response exists')
  t.equal(await metric(gateway, 'session_gateway_session_rebinds_total{reason="lineage"}'), 1, 'the session moved back with it')
  t.equal((await send(gateway, { session })).upstream, 'a', 'its next turn goes there too')
  const unknown = await send(gateway, { session, body: { previous_response_id: 'resp_made_elsewhere' } })
  t.equal(unknown.upstream, 'a', 'a response the gateway never saw made leaves the session where it is')
  t.equal(await metric(gateway, 'session_gateway_session_rebinds_total{reason="lineage"}'), 1)
})

t.test('a header session naming a response made in a group since removed from the config fails over as before', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  const [a, b, c] = ups as [UpstreamProcess, UpstreamProcess, UpstreamProcess]
  // Placed on a among a and b, and on b among b and c.
  const session = sessionsHomedOn('a', ['a', 'b'], 200, 'removed-group').find((id) => rendezvousOrder(id, [{ name: 'b', weight: 1 }, { name: 'c', weight: 1 }])[0]!.name === 'b')!
  const before = await startGateway({ UPSTREAMS: upstreamsEnv([a, b]), REDIS_URL: redis.url })
  await storeReady(before)
  const made = await send(before, { session })
  t.equal(made.upstream, 'a')
  const shared = new Redis(redis.url)
  t.teardown(() => shared.disconnect())
  await until(async () => await shared.get(`session-gateway:origin:resp:${String(made.json.id)}`), (group) => group === 'a', 'its origin in Redis')
  await before.close()

  // Group a is gone from the config; the session's first choice, b, is down.
  const after = await startGateway({ UPSTREAMS: upstreamsEnv([b, c]), REDIS_URL: redis.url })
  t.teardown(after.close)
  await storeReady(after)
  await b.kill()
  const chained = await send(after, { session, body: { previous_response_id: made.json.id } })
  t.equal(chained.status, 200, 'not held to a group that holds the response nowhere it can go')
  t.equal(chained.upstream, 'c')
})

t.test('replicas sharing Redis: one that never saw the failover sends a response to the upstream that produced it', needs('redis-server'), async (t) => {
  const { ups, one, two } = await replicasOverRedis(t, ['a', 'b'])
  const { first } = await strandedChain(t, one, ups, 'stranded-shared', two)
  const chained = await send(two, { body: { previous_response_id: first.json.id } })
  t.equal(chained.upstream, 'a', "replica two reads the response's upstream from Redis")
})

t.test('a conversation created through the gateway is used where it was created, not where its session would be placed', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const { created, placed } = await conversationPlacedElsewhere(t, gateway, ups)
  const id = String(created.json.id)
  for (let i = 0; i < 4; i++) {
    t.equal((await send(gateway, { body: { conversation: id } })).upstream, created.upstream, `a turn in it goes where it exists (${i + 1}), not to ${placed}`)
  }
  t.equal((await sendTo(gateway, 'GET', `/v1/conversations/${id}/items`)).upstream, created.upstream, 'so do its items')
  t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.path === '/v1/responses' && l.session_source === 'conversation'), { session: conversationSessionId(id) }, 'its session is still its own')
})

t.test('replicas sharing Redis: a conversation created through one is used where it was created through the other', needs('redis-server'), async (t) => {
  const { ups, one, two } = await replicasOverRedis(t, ['a', 'b'])
  const { created } = await conversationPlacedElsewhere(t, one, ups)
  const id = String(created.json.id)
  // The creation's binding and origin are written without the client waiting for them.
  await until(async () => (await send(two, { body: { conversation: id } })).upstream, (upstream) => upstream === created.upstream, 'replica two reads where it was created')
  for (let i = 0; i < 4; i++) t.equal((await send(two, { body: { conversation: id } })).upstream, created.upstream, `turn ${i + 1} through replica two`)
  t.equal((await sendTo(two, 'GET', `/v1/conversations/${id}/items`)).upstream, created.upstream, 'and its items')
})

t.test('a stored response or a conversation named in the path (retrieve, cancel, input_items, items) reaches the upstream that holds it', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'stored')
  const created = await send(gateway, { session, body: { background: true } })
  t.equal(created.upstream, 'a')
  const id = String(created.json.id)
  // Each on a fresh connection, without a session header: before, each was a new connection
  // session, placed by rendezvous, so about half reached b, which has no such response.
  const targets: Array<[string, string]> = [['GET', `/v1/responses/${id}`], ['GET', `/v1/responses/${id}/input_items?limit=5`], ['POST', `/v1/responses/${id}/cancel`], ['DELETE', `/v1/responses/${id}`]]
  for (let round = 0; round < 8; round++) {
    for (const [method, path] of targets) t.equal((await sendTo(gateway, method, path)).upstream, 'a', `${method} ${path} (round ${round + 1})`)
  }

  // A conversation's session is derived from its id: its requests and its items go to one upstream.
  const talk = await send(gateway, { body: { conversation: 'conv_stored_1' } })
  for (let round = 0; round < 8; round++) {
    t.equal((await sendTo(gateway, 'GET', '/v1/conversations/conv_stored_1/items')).upstream, talk.upstream, `the conversation's items (round ${round + 1})`)
  }
  const unknown = new Set<string | undefined>()
  for (let i = 0; i < 16; i++) unknown.add((await sendTo(gateway, 'GET', `/v1/responses/resp_nobody_knows_${i}`)).upstream)
  t.equal(unknown.size, 2, 'an id nobody served is placed like any request: spread over both')
  t.notOk(gateway.logText().includes('error'), 'no error logged')
})

t.test('lineage across replicas sharing Redis, and a rebinding one replica made is followed by the other', needs('redis-server'), async (t) => {
  const { ups, one, two } = await replicasOverRedis(t, ['a', 'b', 'c'])
  const first = await send(one, { body: { prompt_cache_key: 'shared-chain' } })
  await one.waitForLog((l) => l.msg === 'request')
  const chained = await send(two, { body: { previous_response_id: first.json.id } })
  t.equal(chained.upstream, first.upstream, 'replica two sends the chain where replica one was served')

  // Replica one moves a session off its killed upstream; replica two, which never saw it fail, follows.
  const home = (await send(one, { session: 'moved-1' })).upstream!
  const victim = ups.find((u) => u.name === home)!
  await victim.kill()
  const moved = (await send(one, { session: 'moved-1' })).upstream!
  t.not(moved, home)
  await victim.restart()
  t.equal((await send(two, { session: 'moved-1' })).upstream, moved, 'the binding in Redis wins over rendezvous')
})

t.test('per-upstream keys and {session} headers reach their upstream only; the client key reaches none', async (t) => {
  const ups = await startUpstreamProcesses(t, ['keyed', 'templated'])
  const gateway = await startGateway({
    GATEWAY_API_KEYS: 'gw-client-key',
    UPSTREAMS: upstreamsEnv(ups, { keyed: { api_key: 'sk-keyed' }, templated: { headers: { 'x-smg-routing-key': '{session}', 'x-fixed': 'f' } } })
  })
  t.teardown(gateway.close)
  for (let i = 0; i < 20; i++) t.equal((await send(gateway, { session: `k-${i}`, headers: { authorization: 'Bearer gw-client-key' } })).status, 200)
  const keyed = ups[0]!.requests
  const templated = ups[1]!.requests
  t.ok(keyed.length > 0 && templated.length > 0, 'both upstreams served some sessions')
  for (const r of keyed) {
    t.equal(r.headers.authorization, 'Bearer sk-keyed')
    t.equal(r.headers['x-smg-routing-key'], undefined)
  }
  for (const r of templated) {
    t.equal(r.headers.authorization, undefined, 'no key of its own: the client key is not passed on')
    t.equal(r.headers['x-smg-routing-key'], r.headers['session-id'])
    t.equal(r.headers['x-fixed'], 'f')
  }
  t.equal((await send(gateway, { session: 'k-x' })).status, 401, 'clients need a gateway key')
})

t.test('WebSocket: a refused or unreachable upstream at the handshake fails over before the 101', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups) })
  t.teardown(gateway.close)
  const home = (await send(gateway, { session: 'ws-1' })).upstream!
  await ups.find((u) => u.name === home)!.kill()
  const ws = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': 'ws-1' })
  t.equal(ws.status, 101)
  const servedBy = ws.headers.find(([name]) => name === 'x-upstream')?.[1]
  t.not(servedBy, home, 'the handshake went to the next upstream')
  ws.socket.destroy()
  t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.transport === 'websocket'), { upstream: servedBy, attempts: 2 })
})

for (const refusal of [{ status: 503 }, { status: 429, retryAfter: 1200 }]) {
  t.test(`WebSocket: a handshake refused with ${refusal.status} goes to the next upstream before the 101, and the refusal counts toward ejection`, async (t) => {
    const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
    // 3 failures in a row eject (the default); a cooldown longer than the test, so it cannot end in between.
    const gateway = await startGateway({ UPSTREAMS: upstreamsEnv(ups), UPSTREAM_COOLDOWN_MS: '600000', UPSTREAM_MAX_COOLDOWN_MS: '600000' })
    t.teardown(gateway.close)
    const refusing = ups[0]!
    await refusing.setMode(refusal)
    const [first, second, third, afterEjection] = sessionsHomedOn('a', ['a', 'b', 'c'], 4, `ws-${refusal.status}`)
    for (const [i, session] of [first!, second!, third!].entries()) {
      const ws = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': session })
      t.equal(ws.status, 101, `${session}: the client gets a 101`)
      const servedBy = ws.headers.find(([name]) => name === 'x-upstream')?.[1]
      t.not(servedBy, 'a', `${session}: from an upstream that accepted`)
      t.equal(refusing.requests.length, i + 1, `${session}: the refusing upstream was asked first`)
      ws.socket.destroy()
      t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === session), { upstream: servedBy, attempts: 2, status: 101 })
    }
    t.equal(await metric(gateway, 'session_gateway_upstream_errors_total{kind="status",upstream="a"}'), 3, 'each refusal counted against its upstream')
    const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string, ejected_for_ms?: number }> }
    const a = ready.upstreams.find((u) => u.name === 'a')!
    t.equal(a.state, 'ejected', 'the third refusal in a row ejected it')
    if (refusal.retryAfter !== undefined) t.ok(a.ejected_for_ms! > 600_000, `the 429's retry-after (1,200 s) is the least cooldown (${a.ejected_for_ms} ms left)`)
    const ws = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': afterEjection! })
    t.equal(ws.status, 101)
    t.equal(refusing.requests.length, 3, 'an ejected upstream is not asked first')
    ws.socket.destroy()
  })
}

t.test('config errors in upstreams stop the command with status 2, naming the key', async (t) => {
  const cli = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js')
  const run = (env: Record<string, string>): { status: number | null, stderr: string } => {
    const result = spawnSync(process.execPath, [cli], { env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env }, encoding: 'utf8', timeout: 20_000 })
    return { status: result.status, stderr: result.stderr }
  }
  const both = run({ UPSTREAM_URL: 'http://127.0.0.1:9/v1', UPSTREAMS: '[{"name":"a","url":"http://127.0.0.1:1"}]' })
  t.equal(both.status, 2)
  t.match(both.stderr, /config UPSTREAM_URL: set UPSTREAM_URL or UPSTREAMS, not both/)
  const twice = run({ UPSTREAMS: '[{"name":"a","url":"http://127.0.0.1:1"},{"name":"a","url":"http://127.0.0.1:2"}]' })
  t.equal(twice.status, 2)
  t.match(twice.stderr, /config UPSTREAMS\[1\]\.name: "a" is used twice/)
})
