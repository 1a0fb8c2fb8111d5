/**
 * Regression: a lineage binding whose write to Redis timed out is queued and replayed when Redis
 * answers again. A write that times out may still land (Redis was slow, not gone): the replay's
 * SET NX then found the gateway's own binding, took it for another replica's and dropped it from
 * the local copy, so in the next outage the gateway no longer knew its own response and gave
 * its continuation a new session (test/slow/endurance-redis.test.ts failed so on a busy host).
 * Real redis-server, real gateway.
 */
import t from 'tap'
import { request } from 'undici'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { startRedis } from '../support/redis-server.js'
import { Redis } from 'ioredis'

async function storeState (gateway: RunningGateway): Promise<string> {
  const res = await request(`${gateway.origin}/readyz`)
  return ((await res.body.json()) as { store: { state: string } }).store.state
}

t.test('a binding whose timed-out write landed is still known locally after its replay', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  t.teardown(redis.resume)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200', REDIS_KEY_PREFIX: 'gw:' })
  t.teardown(gateway.close)
  for (let i = 0; i < 1_000 && await storeState(gateway) !== 'ok'; i++); // connects on its client's events
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())

  redis.pause()
  gateway.store.bind(['resp:resp_1'], 'session-1') // sent to Redis, which does not answer in time: queued
  await gateway.waitForLog((l) => String(l.msg).includes('redis unavailable'))
  redis.resume() // Redis runs the write it was sent: it lands
  await gateway.waitForLog((l) => String(l.msg).includes('bindings made while redis was away are written'))
  t.equal(await probe.get('gw:resp:resp_1'), 'session-1', 'Redis holds the binding')

  redis.pause() // the next outage
  t.same(await gateway.store.lookup(['resp:resp_1']), ['session-1'], 'decided locally, the gateway still knows its own binding')
})
