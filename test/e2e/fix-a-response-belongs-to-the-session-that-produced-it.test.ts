/**
 * Regression: a response id named by a request before the gateway had learned it was bound to
 * that request's session, for good. The id is learned from the answer as it passes, a moment
 * after the client may have it: a compressed JSON answer is inflated after the client has its
 * bytes, a compressed WebSocket message likewise, and another replica's write to Redis is a
 * round trip away. A client quick to continue such a response landed in its connection's
 * session, which is expected for that one request; but its binding then kept the producing
 * session from ever owning its own response, so every later request continuing it went to the
 * wrong session too (another prompt cache, another upstream). The session whose request the
 * upstream answered with an id now owns it, over a binding made by naming it.
 *
 * The race is made deterministic here: the id is named first, then an upstream answer carries it.
 */
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { replyJson, startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
import { ask } from '../support/redis-topologies.js'
import { headerValue } from '../support/responses-client.js'

const RACED = 'resp_raced_0c9f'

/** POSTs on a fresh connection; the upstream answers with the body's `answer` as its id. Returns the session it was told. */
async function post (gateway: RunningGateway, body: unknown, headers: Record<string, string> = {}): Promise<string | undefined> {
  const agent = new Agent({ connections: 1 })
  const logged = gateway.logs.filter((line) => line.msg === 'request').length
  try {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    await res.body.text()
    // Its exchange has ended (and so learned the answer's id) once its log line is written.
    await gateway.waitForLog((line) => line.msg === 'request' && gateway.logs.filter((l) => l.msg === 'request').length > logged)
    return res.headers['x-seen-session'] as string | undefined
  } finally {
    await agent.close()
  }
}

async function race (t: Test, gateway: RunningGateway): Promise<void> {
  const early = await post(gateway, { model: 'gpt-5', previous_response_id: RACED, answer: 'resp_early_1' })
  t.not(early, 'producer', 'the request quicker than the id: its connection decided')

  await post(gateway, { model: 'gpt-5', input: 'produce it', answer: RACED }, { 'session-id': 'producer' })

  for (let i = 0; i < 2; i++) {
    const later = await post(gateway, { model: 'gpt-5', previous_response_id: RACED, answer: `resp_later_${i}` })
    t.equal(later, 'producer', 'a later request continuing the response goes to the session that produced it')
  }
}

/** An upstream that answers each request with the response id its body asks for, and says which session it was told. */
async function upstreamAnsweringAsAsked (t: Test): Promise<string> {
  const upstream = await startMockUpstream((req, res, raw) => {
    const { answer } = JSON.parse(req.body.toString('utf8')) as { answer: string }
    return replyJson({ id: answer, object: 'response', status: 'completed', output: [] }, 200, { 'x-seen-session': headerValue(req.headers, 'session-id') ?? '' })(req, res, raw)
  })
  t.teardown(upstream.close)
  return upstream.url
}

t.test('regression: a response named before it was learned still belongs to the session that produced it (memory)', async (t) => {
  const gateway = await startGateway({ UPSTREAM_URL: await upstreamAnsweringAsAsked(t) })
  t.teardown(gateway.close)
  await race(t, gateway)
})

t.test('regression: a response named before it was learned still belongs to the session that produced it (Redis, two replicas)', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const url = await upstreamAnsweringAsAsked(t)
  const [one, two] = [await startGateway({ UPSTREAM_URL: url, REDIS_URL: redis.url }), await startGateway({ UPSTREAM_URL: url, REDIS_URL: redis.url })]
  for (const gateway of [one!, two!]) {
    t.teardown(gateway.close)
    await until(async () => await storeState(gateway), (state) => state === 'ok', 'saw the gateway connect')
  }
  // Replica two is asked first (the client quicker than replica one's write reaching Redis).
  const early = await post(two!, { model: 'gpt-5', previous_response_id: RACED, answer: 'resp_early_1' })
  await until(async () => await ask(redis.port, ['GET', `session-gateway:resp:${RACED}`]), (owner) => owner === early, 'saw the named id bound in Redis')
  await post(one!, { model: 'gpt-5', input: 'produce it', answer: RACED }, { 'session-id': 'producer' })
  await until(async () => await ask(redis.port, ['GET', `session-gateway:resp:${RACED}`]), (owner) => owner === 'producer', 'saw the producing session own it in Redis')
  for (const gateway of [one!, two!]) {
    t.equal(await post(gateway, { model: 'gpt-5', previous_response_id: RACED, answer: 'resp_later' }), 'producer', 'every replica continues it in the producing session')
  }
})
