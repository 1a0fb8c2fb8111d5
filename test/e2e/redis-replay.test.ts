/**
 * Bindings made while Redis was away are written to it when it returns: a response made
 * through one gateway during an outage is continued through another afterwards. The replay is
 * bounded (oldest dropped first) and never overwrites a binding Redis holds for another
 * session. A session's upstream moved meanwhile is replayed too, the last move per session,
 * unless another replica used the session's binding since. Runs real redis-server processes.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { Writable } from 'node:stream'
import { loadConfig } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observe/logger.js'
import { RedisSessionStore } from '../../src/session/redis-store.js'
import { startGateway } from '../support/gateway.js'
import { logLines, type LogLine, type LogLines } from '../support/log-lines.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { startRedis } from '../support/redis-server.js'
import { answerWithNewResponses, postResponse } from '../support/responses-client.js'
import { storeState, until } from '../support/polling.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

const REPLAYED = 'session store: bindings made while redis was away are written to it'

/**
 * One replica's Redis store, reaching a real redis-server through a TCP proxy the test can cut,
 * a direct client standing for the other replicas, and the store's log lines; connected.
 */
async function replicaBehindProxy (t: Test, { replayMaxEntries, idleTtlMs }: { replayMaxEntries: number, idleTtlMs: number }): Promise<{ proxy: TcpProxy, probe: Redis, logs: LogLines, store: RedisSessionStore }> {
  const redis = await startRedis()
  t.teardown(redis.close)
  const proxy = await startTcpProxy(redis.port)
  t.teardown(proxy.close)
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  const logs = logLines()
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.add(JSON.parse(line) as LogLine); done() } })
  const config = loadConfig({ env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_REPLAY_MAX_ENTRIES: String(replayMaxEntries) } })
  const store = new RedisSessionStore({ target: config.redis, timeoutMs: 200, idleTtlMs, keyPrefix: 'gw:', localMaxEntries: 100, localMaxBytes: 1024 * 1024, replayMaxEntries: config.redis.replayMaxEntries, logger: createLogger('info', sink) })
  t.teardown(async () => { await store.close() })
  await until(() => store.health().state, (s) => s === 'ok', 'connected')
  return { proxy, probe, logs, store }
}

t.test('a response made through one gateway while Redis was down is continued through another once Redis is back', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200' }
  const [one, two] = [await startGateway(env), await startGateway(env)]
  t.teardown(one.close)
  t.teardown(two.close)
  for (const gateway of [one, two]) await until(async () => await storeState(gateway), (s) => s === 'ok', 'connected')

  await redis.kill()
  await until(async () => await storeState(one), (s) => s === 'degraded', 'degraded')
  const during = await postResponse(one, upstream, answered, { model: 'gpt-5', input: 'made during the outage', stream: true })
  t.equal(during.status, 200)

  await redis.restart() // empty: only a replay can bring the binding back
  const replayed = await one.waitForLog((line) => line.msg === REPLAYED)
  t.match(replayed, { written: 1, kept: 0, dropped: 0 }, 'its binding (the response id) is written')
  await until(async () => await storeState(two), (s) => s === 'ok', 'gateway 2 reconnected')
  const continued = await postResponse(two, upstream, answered, { model: 'gpt-5', previous_response_id: during.responseId })
  t.equal(continued.session, during.session, 'gateway 2, which never saw the response, continues it in its session')
  t.equal(continued.source, 'previous_response')
})

t.test('the replay keeps a binding Redis already holds for another session, and drops the oldest past its bound', needs('redis-server'), async (t) => {
  const { proxy, probe, logs, store } = await replicaBehindProxy(t, { replayMaxEntries: 2, idleTtlMs: 3_600_000 })

  proxy.cut() // this replica loses Redis; the others (the probe) do not
  await until(() => store.health().state, (s) => s === 'degraded', 'degraded')
  store.bind(['conv:oldest'], 'session-a')
  store.bind(['conv:contested'], 'session-a')
  store.bind(['conv:newest'], 'session-a')
  await probe.set('gw:conv:contested', 'session-b') // another replica bound it meanwhile

  proxy.restore()
  const replayed = await logs.waitFor((line) => line.msg === REPLAYED, 'the replay')
  t.match(replayed, { written: 1, kept: 1, dropped: 1 })
  t.equal(await probe.get('gw:conv:contested'), 'session-b', "the other replica's binding is kept")
  t.equal(await probe.get('gw:conv:newest'), 'session-a', 'a binding made during the outage is written')
  const ttl = await probe.pttl('gw:conv:newest')
  t.ok(ttl > 0 && ttl <= 3_600_000, `with what is left of its idle TTL (${ttl} ms)`)
  t.equal(await probe.get('gw:conv:oldest'), null, 'the oldest, past the bound of 2, is not')
  t.same(await store.lookup(['conv:contested']), ['session-b'], "and this replica now follows Redis's binding")
})

t.test("the replay writes a session's last upstream move over the binding Redis held from before, keeps one another replica used since, within the same bound", needs('redis-server'), async (t) => {
  const HOUR = 3_600_000
  const { proxy, probe, logs, store } = await replicaBehindProxy(t, { replayMaxEntries: 4, idleTtlMs: HOUR })
  // Every write and read of a binding sets its TTL to the idle TTL, so its TTL tells when it was
  // last used: this one a second before the outage.
  await probe.set('gw:upstream:moved', 'a', 'PX', HOUR - 1000)

  proxy.cut()
  await until(() => store.health().state, (s) => s === 'degraded', 'degraded')
  store.bind(['conv:oldest'], 'session-a')
  store.bindUpstream('moved', 'b')
  store.bindUpstream('contested', 'b')
  store.bindUpstream('fresh', 'b')
  store.bindUpstream('moved', 'c') // moved again: only this one waits
  store.bind(['conv:newest'], 'session-a') // a fifth binding: the oldest of the four goes
  // Another replica moved 'contested' after this one did (its TTL a second longer than this one's).
  await probe.set('gw:upstream:contested', 'a', 'PX', HOUR + 1000)
  t.equal(await store.upstreamOf('moved'), 'c', 'while Redis is away, the local move answers')

  proxy.restore()
  const replayed = await logs.waitFor((line) => line.msg === REPLAYED, 'the replay')
  t.match(replayed, { written: 3, kept: 1, expired: 0, dropped: 1 })
  t.equal(await probe.get('gw:upstream:moved'), 'c', 'the last move is written over the binding from before the outage')
  const ttl = await probe.pttl('gw:upstream:moved')
  t.ok(ttl > 0 && ttl <= HOUR, `with what is left of its idle TTL (${ttl} ms)`)
  t.equal(await probe.get('gw:upstream:fresh'), 'b', 'a move Redis knew nothing of is written')
  t.equal(await probe.get('gw:upstream:contested'), 'a', "the other replica's later move is kept")
  t.equal(await probe.get('gw:conv:newest'), 'session-a', 'lineage keys share the queue')
  t.equal(await probe.get('gw:conv:oldest'), null, 'and its bound: the oldest binding, past 4, is dropped')
  t.equal(await store.upstreamOf('moved'), 'c')
  t.equal(await store.upstreamOf('contested'), 'a', 'this replica now follows the binding used last')
})
