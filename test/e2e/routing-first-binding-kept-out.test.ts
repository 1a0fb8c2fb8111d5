/**
 * Two replicas bind a session to different upstreams: one while it cannot reach Redis (its
 * first binding queued), the other through Redis. The queued first binding, replayed, is kept
 * out by the other's, and the replica takes Redis's binding into its local copy too, so when it
 * must decide locally again (Redis away once more) it still routes the session where every
 * replica does. Regression: its local copy kept its own choice, and routed there. Real
 * redis-server, real upstream processes, two gateways.
 */
import http from 'node:http'
import t from 'tap'
import { Redis } from 'ioredis'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { needs } from '../support/needs.js'
import { startRedis } from '../support/redis-server.js'
import { storeState, until } from '../support/polling.js'
import { startTcpProxy } from '../support/tcp-proxy.js'
import { sessionsHomedOn, startUpstreamProcesses } from '../support/upstream-process.js'

const REPLAYED = 'session store: bindings made while redis was away are written to it'

/** A POST /v1/responses for `session` on a connection of its own; resolves with the upstream that answered. */
async function servedBy (gateway: RunningGateway, session: string): Promise<string | undefined> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${gateway.baseURL}/responses`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', connection: 'close', 'session-id': session }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { upstream?: string }).upstream))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(JSON.stringify({ model: 'gpt-test', input: 'hi' }))
  })
}

t.test("regression: a replica whose first binding Redis kept out routes the session by Redis's binding, even deciding locally", needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const proxy = await startTcpProxy(redis.port) // replica two's way to Redis, cut for its outages
  t.teardown(proxy.close)
  const shared = new Redis(redis.url)
  t.teardown(() => shared.disconnect())
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const upstreams = JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url })))
  const one = await startGateway({ UPSTREAMS: upstreams, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200' })
  t.teardown(one.close)
  const two = await startGateway({ UPSTREAMS: upstreams, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_TIMEOUT_MS: '200' })
  t.teardown(two.close)
  for (const gateway of [one, two]) await until(async () => await storeState(gateway), (s) => s === 'ok', 'connected')

  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'kept-out')
  const key = `session-gateway:upstream:${session!}`
  proxy.cut()
  await until(async () => await storeState(two), (s) => s === 'degraded', 'replica two degraded')
  t.equal(await servedBy(two, session!), 'a', 'replica two, reaching no Redis, binds it to a (queued)')

  // Replica one binds it to b: a fails its request, which goes over to b.
  const a = ups.find((u) => u.name === 'a')!
  await a.setMode({ status: 500 })
  t.equal(await servedBy(one, session!), 'b', 'replica one binds it to b')
  await a.setMode({ status: 200 })
  await until(async () => await shared.get(key), (bound) => bound === 'b', 'bound to b in Redis')

  proxy.restore()
  t.match(await two.waitForLog((line) => line.msg === REPLAYED), { kept: 1 }, "replica two's first binding, replayed, is kept out (its response id is written)")
  t.equal(await shared.get(key), 'b', 'Redis keeps b')
  t.equal(await servedBy(two, session!), 'b', 'replica two, reading Redis, follows it')

  proxy.cut()
  await until(async () => await storeState(two), (s) => s === 'degraded', 'replica two degraded again')
  t.equal(await servedBy(two, session!), 'b', 'and deciding locally, still routes it to b')
})
