/**
 * A slow Redis under concurrent traffic (test/redis-sessions.test.ts covers one request at a
 * time, and Redis dying): with Redis stopped (SIGSTOP: connected, never answering), 50 requests
 * at once through two replicas all complete while it is still stopped, each decided from what
 * its gateway knows, and the outage is logged once, not once per request; once Redis answers
 * again, sharing resumes. Runs a real redis-server.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { replyJson, replySse, responseStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { needs } from '../support/needs.js'
import { startRedis } from '../support/redis-server.js'

const CONCURRENT = 50

interface Sent {
  status: number
  /** The session the upstream was told. */
  session: string | undefined
  /** The id the upstream answered with: `resp_<input>`. */
  responseId: string
}

interface Body {
  /** Unique per request: it names the upstream's response and finds the request at the upstream. */
  input: string
  stream?: boolean
  previous_response_id?: string
  prompt_cache_key?: string
}

/** Answers each request with response id `resp_<input>`: streamed when asked, else as JSON. */
function answerByInput (upstream: MockUpstream): void {
  upstream.handle((req, res, raw) => {
    const body = JSON.parse(req.body.toString('utf8')) as Body
    const id = `resp_${body.input}`
    return body.stream === true
      ? replySse([responseStream(id, 'shared — ✓')])(req, res, raw)
      : replyJson({ id, object: 'response', status: 'completed', output: [] })(req, res, raw)
  })
}

/** POSTs on a connection of its own (so the connection rule never decides); safe to run many at once. */
async function post (gateway: RunningGateway, upstream: MockUpstream, body: Body): Promise<Sent> {
  const agent = new Agent({ connections: 1 })
  try {
    const res = await request(`${gateway.baseURL}/responses`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-5', ...body }) })
    await res.body.text()
    const seen = upstream.requests.find((r) => (JSON.parse(r.body.toString('utf8')) as Body).input === body.input)
    const session = seen?.headers['session-id']
    return { status: res.statusCode, session: typeof session === 'string' ? session : undefined, responseId: `resp_${body.input}` }
  } finally {
    await agent.close()
  }
}

async function readiness (gateway: RunningGateway): Promise<{ status: string, store: { state: string } }> {
  const res = await request(`${gateway.origin}/readyz`)
  return await res.body.json() as { status: string, store: { state: string } }
}

/**
 * Resolves once /readyz shows the store connected to Redis. The store changes state on its Redis
 * client's own events, which the test cannot hook, so it asks; each ask is a round trip through
 * the gateway's event loop (no sleeping), and there are at most 1,000.
 */
async function readyWithRedis (gateway: RunningGateway): Promise<void> {
  let last
  for (let i = 0; i < 1_000; i++) {
    last = await readiness(gateway)
    if (last.status === 'ready' && last.store.state === 'ok') return
  }
  throw new Error(`the gateway never connected to Redis: ${JSON.stringify(last)}`)
}

const linesSaying = (gateway: RunningGateway, text: string): number => gateway.logs.filter((l) => String(l.msg).includes(text)).length

t.test(`a stopped Redis under ${CONCURRENT} concurrent requests: all complete while it is stopped, the outage is logged once, sharing resumes after`, needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  t.teardown(redis.resume) // (teardowns run last-in first-out: resumed, then killed)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  answerByInput(upstream)
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200' }
  const one = await startGateway(env)
  t.teardown(one.close)
  const two = await startGateway(env)
  t.teardown(two.close)
  for (const gateway of [one, two]) await readyWithRedis(gateway)

  const a = await post(one, upstream, { input: 'before', stream: true })
  const shared = await post(two, upstream, { input: 'before-shared', previous_response_id: a.responseId })
  t.equal(shared.session, a.session, 'before: a response made through gateway 1 is continued through gateway 2')
  const keyed = await post(one, upstream, { input: 'before-keyed', prompt_cache_key: 'tenant-7' })

  redis.pause()
  const during = await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) => i % 2 === 0
    ? await post(one, upstream, { input: `paused-${i}`, previous_response_id: a.responseId, stream: i % 4 === 0 })
    : await post(two, upstream, { input: `paused-${i}`, prompt_cache_key: 'tenant-7' })))
  // Still stopped here: every one of them was decided without Redis's answer (each waited at most REDIS_TIMEOUT_MS).
  t.same(during.filter((d) => d.status !== 200), [], `all ${CONCURRENT} requests succeeded while Redis was stopped`)
  t.equal(during.filter((d, i) => i % 2 === 0 && d.session === a.session).length, CONCURRENT / 2, 'gateway 1 continued its own response in its session, from what it knows')
  t.equal(during.filter((d, i) => i % 2 === 1 && d.session === keyed.session).length, CONCURRENT / 2, 'gateway 2 gave the cache key the same derived session as gateway 1 did')
  for (const [name, gateway] of [['gateway 1', one], ['gateway 2', two]] as const) {
    t.match(await readiness(gateway), { status: 'degraded', store: { state: 'degraded' } }, `${name}: /readyz says degraded`)
    t.equal(linesSaying(gateway, 'redis unavailable'), 1, `${name}: the outage is logged once, not once per request`)
  }

  redis.resume()
  // The first lookup Redis answers brings each gateway back.
  const back = await post(two, upstream, { input: 'after-known', previous_response_id: a.responseId })
  t.equal(back.session, a.session, 'gateway 2 finds gateway 1\'s response through Redis again')
  await post(one, upstream, { input: 'after-one', previous_response_id: shared.responseId })
  for (const [name, gateway] of [['gateway 1', one], ['gateway 2', two]] as const) {
    t.match(await readiness(gateway), { status: 'ready', store: { state: 'ok' } }, `${name}: ready again`)
    // Each outage's end is logged once, not once per request answered again. On a loaded host
    // a command right after the resume can miss REDIS_TIMEOUT_MS (200 ms) with nothing read
    // meanwhile: a second outage, logged as one and ended as one (CI saw 2 recoveries once).
    const outages = linesSaying(gateway, 'redis unavailable') + linesSaying(gateway, 'not reachable at start')
    t.equal(linesSaying(gateway, 'redis is back'), outages, `${name}: the recovery is logged once per outage`, {
      lines: gateway.logs.filter((l) => String(l.msg).includes('session store')).map((l) => `${String(l.time)} ${String(l.msg)} ${String(l.reason ?? '')}`)
    })
  }
  const d = await post(two, upstream, { input: 'after-made', stream: true })
  const e = await post(one, upstream, { input: 'after-continued', previous_response_id: d.responseId })
  t.equal(e.session, d.session, 'after: a response made through gateway 2 is continued through gateway 1')
})
