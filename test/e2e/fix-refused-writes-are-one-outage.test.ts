/**
 * Regression: a Redis that answers but refuses writes (full under `maxmemory` with the default
 * `noeviction` policy: `OOM command not allowed`) was an outage that every answer ended. Each
 * request's lookup (a read, answered) logged `redis is back`, its binding (a write, refused)
 * `redis unavailable` again: two log lines a request, `/readyz` flapping, and the usage writes
 * Redis refused counted as answered. Refused writes are one outage now, logged once, that only
 * a write Redis accepts ends; then the bindings it refused are replayed.
 */
import t from 'tap'
import { startGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
import { ask } from '../support/redis-topologies.js'
import { answerWithNewResponses, postResponse } from '../support/responses-client.js'

const PREFIX = 'session-gateway:'
const OUTAGE = 'session store: redis unavailable, deciding sessions locally until it returns'
const BACK = 'session store: redis is back, sessions shared again'
const REPLAYED = 'session store: bindings made while redis was away are written to it'

t.test('regression: a Redis refusing writes (OOM) is one outage, logged once, ended by the first write it accepts', needs('redis-server'), async (t) => {
  const redis = await startRedis({ args: ['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'] })
  t.teardown(redis.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url })
  t.teardown(gateway.close)
  await until(async () => await storeState(gateway), (state) => state === 'ok', 'saw the gateway connect')
  const post = async (body: unknown): ReturnType<typeof postResponse> => await postResponse(gateway, upstream, answered, body)
  const logged = (msg: string): number => gateway.logs.filter((line) => line.msg === msg).length

  // Redis past its maxmemory: from now on it refuses every write that needs memory.
  await ask(redis.port, ['CONFIG', 'SET', 'maxmemory', '1'])
  await t.rejects(ask(redis.port, ['SET', 'probe', 'x']), /^OOM/, 'Redis refuses writes')

  const during = [await post({ model: 'gpt-5', conversation: 'conv_full_0' })]
  await until(async () => await storeState(gateway), (state) => state === 'degraded', 'saw the refused write degrade the store')
  for (let i = 1; i < 5; i++) {
    const exchange = await post({ model: 'gpt-5', conversation: `conv_full_${i}` })
    t.equal(await storeState(gateway), 'degraded', '/readyz says degraded, request after request')
    during.push(exchange)
  }
  t.same(during.map((exchange) => exchange.status), [200, 200, 200, 200, 200], 'each answered while Redis refuses writes')
  t.equal(logged(OUTAGE), 1, 'the outage is logged once')
  t.equal(logged(BACK), 0, "answers to reads did not end it: no 'redis is back' between refused writes")

  await ask(redis.port, ['CONFIG', 'SET', 'maxmemory', '0'])
  const after = await post({ model: 'gpt-5', conversation: 'conv_after' })
  t.equal(after.status, 200)
  await gateway.waitForLog((line) => line.msg === REPLAYED)
  t.equal(await ask(redis.port, ['GET', `${PREFIX}conv:conv_after`]), after.session, 'the binding Redis accepted is there')
  t.equal(await storeState(gateway), 'ok', 'the first write Redis accepted ended the outage')
  t.equal(logged(BACK), 1, "'redis is back' once")
  t.equal(logged(OUTAGE), 1, 'and no further outage')
  for (const exchange of during) {
    const conversation = (JSON.parse(exchange.seen!.body.toString('utf8')) as { conversation: string }).conversation
    t.equal(await ask(redis.port, ['GET', `${PREFIX}conv:${conversation}`]), exchange.session, `${conversation}, refused, was replayed`)
  }
})
