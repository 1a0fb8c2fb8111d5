/**
 * With Redis, replicas share sessions: a response made through one gateway is continued
 * through another. When Redis goes away requests still succeed, /readyz says degraded and the
 * outage is logged once; when it returns, sharing resumes. Runs a real redis-server.
 */
import { channel } from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import t from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { needs } from '../support/needs.js'
import { startRedis, type RunningRedis } from '../support/redis-server.js'
import { answerWithNewResponses, postResponse, type Exchange } from '../support/responses-client.js'

interface Test { teardown: (fn: () => unknown) => void }

interface Readiness { status: string, store: { kind: string, state: string, detail?: string } }

async function readiness (gateway: RunningGateway): Promise<Readiness> {
  const res = await request(`${gateway.origin}/readyz`)
  return await res.body.json() as Readiness
}

/**
 * Polls /readyz until `predicate` holds; fails after `attempts` tries. The store changes state
 * on its Redis client's own events, which the test cannot hook, so it reads the real state.
 */
async function readyzUntil (gateway: RunningGateway, predicate: (r: Readiness) => boolean, what: string, attempts = 200): Promise<Readiness> {
  let last: Readiness | undefined
  for (let i = 0; i < attempts; i++) {
    last = await readiness(gateway)
    if (predicate(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`/readyz never showed ${what}; last: ${JSON.stringify(last)}`)
}

const isReady = (r: Readiness): boolean => r.status === 'ready' && r.store.kind === 'redis' && r.store.state === 'ok'
const isDegraded = (r: Readiness): boolean => r.status === 'degraded' && r.store.kind === 'redis' && r.store.state === 'degraded'

const outageWarnings = (gateway: RunningGateway): number =>
  gateway.logs.filter((line) => line.level === 'warn' && String(line.msg).includes('redis unavailable')).length

interface Cluster {
  redis: RunningRedis
  upstream: MockUpstream
  answered: string[]
  gateways: RunningGateway[]
  post: (gateway: RunningGateway, body: unknown) => Promise<Exchange>
}

async function startCluster (t: Test, replicas: number): Promise<Cluster> {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const gateways: RunningGateway[] = []
  for (let i = 0; i < replicas; i++) {
    const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200', SESSION_IDLE_TTL_SECONDS: '3600' })
    t.teardown(gateway.close)
    gateways.push(gateway)
  }
  return { redis, upstream, answered, gateways, post: async (gateway, body) => await postResponse(gateway, upstream, answered, body) }
}

t.test('two gateways share sessions through Redis, ride out its outage, and share again when it returns', needs('redis-server'), async (t) => {
  const { redis, upstream, gateways, post } = await startCluster(t, 2)
  const [one, two] = gateways as [RunningGateway, RunningGateway]
  for (const gateway of gateways) t.ok(isReady(await readyzUntil(gateway, isReady, 'redis ok at start')), 'ready, store redis ok')

  // Sharing: made through one, continued through two, which has never seen it.
  const a = await post(one, { model: 'gpt-5', input: 'start', stream: true })
  const b = await post(two, { model: 'gpt-5', previous_response_id: a.responseId })
  t.equal(b.session, a.session, 'a response made through gateway 1 is continued through gateway 2 in its session')
  t.equal(b.source, 'previous_response')
  const c = await post(one, { model: 'gpt-5', previous_response_id: b.responseId, stream: true })
  t.equal(c.session, a.session, "and gateway 2's answer is continued back through gateway 1")

  // The binding lives in Redis with the idle TTL, so Redis never grows without bound.
  const probe = new Redis(redis.url, { lazyConnect: true })
  await probe.connect()
  t.equal(await probe.get(`session-gateway:resp:${a.responseId!}`), a.session)
  const ttl = await probe.ttl(`session-gateway:resp:${a.responseId!}`)
  t.ok(ttl > 0 && ttl <= 3600, `the binding expires (ttl ${ttl}s)`)
  probe.disconnect()

  // Outage.
  await redis.kill()
  for (const gateway of gateways) {
    const degraded = await readyzUntil(gateway, isDegraded, 'a degraded store after redis died')
    t.match(degraded, { status: 'degraded', store: { kind: 'redis', state: 'degraded', detail: /redis unavailable/ } })
  }
  const before = upstream.requests.length
  const during: Exchange[] = []
  for (let i = 0; i < 3; i++) {
    for (const gateway of gateways) during.push(await post(gateway, { model: 'gpt-5', input: `during the outage ${i}`, stream: i % 2 === 0 }))
  }
  t.same(during.map((e) => e.status), [200, 200, 200, 200, 200, 200], 'requests through both gateways still succeed')
  t.equal(upstream.requests.length, before + 6, 'and reach the upstream')
  t.ok(during.every((e) => typeof e.session === 'string' && e.session !== ''), 'each with a session')
  const local = await post(one, { model: 'gpt-5', previous_response_id: during[0]!.responseId })
  t.equal(local.session, during[0]!.session, 'a gateway still continues what it has seen itself')
  const known = await post(two, { model: 'gpt-5', previous_response_id: b.responseId })
  t.equal(known.session, a.session, 'and what it learned before the outage')
  t.equal(outageWarnings(one), 1, 'the outage is logged once by gateway 1')
  t.equal(outageWarnings(two), 1, 'and once by gateway 2')

  // Redis returns (empty) on the same port.
  await redis.restart()
  for (const gateway of gateways) t.ok(isReady(await readyzUntil(gateway, isReady, 'redis ok again')), 'ready again')
  const d = await post(two, { model: 'gpt-5', input: 'after the outage', stream: true })
  const e = await post(one, { model: 'gpt-5', previous_response_id: d.responseId })
  t.equal(e.session, d.session, 'a response made through gateway 2 is continued through gateway 1 again')
  t.equal(e.source, 'previous_response')
  for (const gateway of gateways) {
    t.equal(gateway.logs.filter((line) => line.msg === 'session store: redis is back, sessions shared again').length, 1, 'the recovery is logged once')
    t.equal(outageWarnings(gateway), 1, 'and the outage was not logged again')
  }
})

t.test('a gateway started while Redis is down serves at once, and shares once Redis is up', needs('redis-server'), async (t) => {
  const { redis, upstream, answered } = await startCluster(t, 0)
  await redis.kill()
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200' }
  const early = await startGateway(env)
  t.teardown(early.close)

  const first = await postResponse(early, upstream, answered, { model: 'gpt-5', input: 'hi', stream: true })
  t.equal(first.status, 200, 'requests succeed with Redis unreachable from the start')
  const degraded = await readyzUntil(early, isDegraded, 'degraded while redis is down')
  t.match(degraded.store.detail, /redis unavailable/)
  await early.waitForLog((line) => line.level === 'warn' && String(line.msg).includes('not reachable at start'))

  await redis.restart()
  await readyzUntil(early, isReady, 'ok once redis is up')
  const late = await startGateway(env)
  t.teardown(late.close)
  await readyzUntil(late, isReady, 'the second gateway connected')
  const made = await postResponse(early, upstream, answered, { model: 'gpt-5', input: 'now shared', stream: true })
  const continued = await postResponse(late, upstream, answered, { model: 'gpt-5', previous_response_id: made.responseId })
  t.equal(continued.session, made.session, 'sessions are shared once Redis is up')
})

t.test('a hung Redis (stopped, never answering) does not hang requests: they are decided locally', needs('redis-server'), async (t) => {
  const { redis, gateways, post } = await startCluster(t, 1)
  const gateway = gateways[0]!
  await readyzUntil(gateway, isReady, 'redis ok')
  const a = await post(gateway, { model: 'gpt-5', input: 'start', stream: true })

  redis.pause()
  t.teardown(redis.resume) // SIGKILL works on a stopped process too, but leave it runnable
  // Without REDIS_TIMEOUT_MS bounding the wait, this request would never complete.
  const hung = await post(gateway, { model: 'gpt-5', previous_response_id: a.responseId })
  t.equal(hung.status, 200)
  t.equal(hung.session, a.session, 'decided from what the gateway knows itself')
  t.match(await readiness(gateway), { status: 'degraded', store: { state: 'degraded' } }, '/readyz says degraded')
  t.equal(outageWarnings(gateway), 1, 'the stall is logged as an outage')

  redis.resume()
  const after = await post(gateway, { model: 'gpt-5', previous_response_id: hung.responseId })
  t.equal(after.session, a.session)
  await readyzUntil(gateway, isReady, 'ok once redis answers again')
})

t.test('closing a gateway does not log a Redis outage', needs('redis-server'), async (t) => {
  // Regression: the store's own disconnect ended the Redis connection, which it took for an
  // outage, so every clean shutdown logged "redis unavailable".
  const toRedis: Socket[] = []
  const sockets = channel('net.client.socket')
  const onSocket = (message: unknown): void => { toRedis.push((message as { socket: Socket }).socket) }
  sockets.subscribe(onSocket)
  t.teardown(async () => { sockets.unsubscribe(onSocket) })

  const { redis, gateways } = await startCluster(t, 1)
  const gateway = gateways[0]!
  await readyzUntil(gateway, isReady, 'redis ok')
  const redisSockets = toRedis.filter((socket) => socket.remotePort === redis.port)
  t.ok(redisSockets.length > 0, 'the gateway is connected to redis')
  const closed = redisSockets.map(async (socket) => {
    if (!socket.destroyed) await new Promise((resolve) => socket.once('close', resolve))
  })
  await gateway.close()
  await Promise.all(closed)
  await new Promise((resolve) => setImmediate(resolve)) // the client reports 'end' on the next tick after 'close'
  t.equal(outageWarnings(gateway), 0, 'no outage logged')
})
