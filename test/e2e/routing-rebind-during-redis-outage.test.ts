/**
 * A session moved by a failover while Redis was away stays moved once Redis is back: the new
 * binding is replayed into Redis over the one it held from before the outage, so neither this
 * replica nor another sends the session back to its first upstream when that returns. Real
 * redis-server, real upstream processes killed and restarted.
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
async function send (gateway: RunningGateway, session: string): Promise<{ status: number, upstream: string | undefined }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${gateway.baseURL}/responses`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', connection: 'close', 'session-id': session }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, upstream: (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { upstream?: string }).upstream }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(JSON.stringify({ model: 'gpt-test', input: 'hi' }))
  })
}

t.test('a session moved while Redis was away stays moved when Redis and its first upstream are back, on every replica', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const proxy = await startTcpProxy(redis.port) // replica one's way to Redis, cut for the outage
  t.teardown(proxy.close)
  const shared = new Redis(redis.url)
  t.teardown(() => shared.disconnect())
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const upstreams = JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url })))
  const one = await startGateway({ UPSTREAMS: upstreams, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_TIMEOUT_MS: '200' })
  t.teardown(one.close)
  const two = await startGateway({ UPSTREAMS: upstreams, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200' })
  t.teardown(two.close)
  for (const gateway of [one, two]) await until(async () => await storeState(gateway), (s) => s === 'ok', 'connected')

  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'outage-move')
  const key = `session-gateway:upstream:${session!}`
  t.equal((await send(one, session!)).upstream, 'a', 'the session starts on a')
  await until(async () => await shared.get(key), (bound) => bound === 'a', 'bound to a in Redis')

  proxy.cut()
  await until(async () => await storeState(one), (s) => s === 'degraded', 'degraded')
  const a = ups.find((u) => u.name === 'a')!
  await a.kill()
  const moved = await send(one, session!)
  t.same(moved, { status: 200, upstream: 'b' }, 'a failover moves it to b while Redis is away')

  proxy.restore()
  await one.waitForLog((line) => line.msg === REPLAYED)
  t.equal(await shared.get(key), 'b', 'Redis holds the move, not the binding from before the outage')

  await a.restart()
  t.equal((await send(one, session!)).upstream, 'b', 'this replica keeps it on b')
  t.equal((await send(two, session!)).upstream, 'b', 'and so does one that never saw the move')
  t.equal(a.requests.filter((r) => r.method === 'POST').length, 1, 'a, back, served only the first request')
})
