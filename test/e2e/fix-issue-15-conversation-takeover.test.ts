/**
 * Issue 15, conversation takeover: a request naming a known previous_response_id rebound every
 * other key in its body to that response's session, so anyone who knew a conversation id could
 * move its owner's later requests into their own session. A key bound to one session must never
 * be rebound to another; a request with conflicting keys is decided by its lineage, alone.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startMockUpstream } from '../support/mock-upstream.js'
import { startGateway, startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'
import { startRedis } from '../support/redis-server.js'
import { answerWithNewResponses, postResponse, type Exchange } from '../support/responses-client.js'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { createLogger } from '../../src/observe/logger.js'
import { loadConfig } from '../../src/config/load-config.js'

type Post = (gateway: RunningGateway, body: unknown, headers?: Record<string, string>) => Promise<Exchange>

/** The sequence: victim, attacker, the attack, then the victim again. */
async function attack (t: Test, post: Post, victimGateway: RunningGateway, attackerGateway: RunningGateway): Promise<void> {
  const victim = await post(victimGateway, { model: 'gpt-5', conversation: 'conv_B', input: 'mine' })
  t.equal(victim.source, 'conversation')

  const attacker = await post(attackerGateway, { model: 'gpt-5', input: 'hello' }, { 'session-id': 'attacker-A' })
  t.equal(attacker.session, 'attacker-A')

  const takeover = await post(attackerGateway, { model: 'gpt-5', previous_response_id: attacker.responseId, conversation: 'conv_B' })
  t.equal(takeover.session, 'attacker-A', "the attacker's own request is decided by its lineage")
  t.equal(takeover.source, 'previous_response')

  const after = await post(victimGateway, { model: 'gpt-5', conversation: 'conv_B', input: 'still mine' })
  t.equal(after.session, victim.session, "the victim's next request goes upstream in conv_B's session")
  t.not(after.session, 'attacker-A', 'not in the attacker\'s')
  t.equal(after.source, 'conversation')
}

t.test('issue 15: naming another session\'s conversation beside your own response id does not take it over', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const answered = answerWithNewResponses(upstream)
  const post: Post = async (gw, body, headers) => await postResponse(gw, upstream, answered, body, { headers })
  await attack(t, post, gateway, gateway)
})

t.test('issue 15: with a shared Redis store, across replicas, the conversation is not taken over either', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const gateways: RunningGateway[] = []
  for (let i = 0; i < 2; i++) {
    const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '1000' })
    t.teardown(gateway.close)
    await sharing(gateway)
    gateways.push(gateway)
  }
  const [victimGateway, attackerGateway] = gateways as [RunningGateway, RunningGateway]
  const post: Post = async (gw, body, headers) => await postResponse(gw, upstream, answered, body, { headers })
  await attack(t, post, victimGateway, attackerGateway)
})

/** Resolves once the gateway's store is connected to Redis (until then it decides locally). */
async function sharing (gateway: RunningGateway): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const res = await request(`${gateway.origin}/readyz`)
    const { store } = await res.body.json() as { store: { state: string } }
    if (store.state === 'ok') return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('the gateway never connected to redis')
}

t.test('issue 15: the memory store never rebinds a key another session owns, and renews its own', async (t) => {
  let now = 1_000_000
  const store = new MemorySessionStore({ maxBytes: 64 * 1024 * 1024, maxEntries: 100, idleTtlMs: 1_000, now: () => now })
  store.bind(['conv:B', 'pck:shared'], 'victim')
  store.bind(['resp:A1', 'conv:B', 'pck:new'], 'attacker')
  t.same(await store.lookup(['conv:B', 'pck:shared', 'resp:A1', 'pck:new']), ['victim', 'victim', 'attacker', 'attacker'],
    'only the unbound keys went to the attacker')
  now += 800
  store.bind(['conv:B'], 'victim')
  now += 800
  t.equal(store.get('conv:B'), 'victim', 'binding again for the same session renewed the idle TTL')
  now += 2_000
  store.bind(['conv:B'], 'attacker')
  t.equal(store.get('conv:B'), 'attacker', 'an expired binding is unbound, so it can be bound afresh')
})

t.test('issue 15: the Redis store binds a key only if no other session owns it, atomically, and renews its own', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  const storeFor = (): RedisSessionStore => {
    const store = new RedisSessionStore({ target: loadConfig({ env: { REDIS_URL: redis.url } }).redis, replayMaxEntries: 0, timeoutMs: 1_000, idleTtlMs: 3_600_000, keyPrefix: 't:', localMaxEntries: 100, localMaxBytes: 1024 * 1024, logger: createLogger('silent') })
    t.teardown(async () => { await store.close() })
    return store
  }
  const [one, two] = [storeFor(), storeFor()]
  await Promise.all([one, two].map(async (store) => { while (store.health().state !== 'ok') await new Promise((resolve) => setImmediate(resolve)) }))

  one.bind(['conv:B'], 'victim')
  t.same(await one.lookup(['conv:B']), ['victim'])
  two.bind(['resp:A1', 'conv:B'], 'attacker')
  t.same(await two.lookup(['conv:B', 'resp:A1']), ['victim', 'attacker'], 'the other replica could not rebind it')
  t.equal(await probe.get('t:conv:B'), 'victim')

  await probe.expire('t:conv:B', 5)
  one.bind(['conv:B'], 'victim')
  await one.lookup(['conv:B']) // runs after the bind on the same connection
  t.ok(await probe.ttl('t:conv:B') > 5, 'binding again for the owner renewed the TTL')
  await probe.expire('t:conv:B', 5)
  two.bind(['conv:B'], 'attacker')
  await two.lookup(['conv:B'])
  t.ok(await probe.ttl('t:conv:B') <= 5, "a refused bind leaves the owner's TTL alone")
})
