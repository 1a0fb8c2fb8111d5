/**
 * Redis as people run it: over TLS, behind an ACL user and password, found through Sentinel
 * (with passwords of its own), or as a Cluster. Each way, two gateways share sessions through it; a wrong CA or password
 * leaves the store degraded while requests are still served, and no password reaches a log.
 * Runs real redis-server processes (and openssl, redis-cli for the TLS and Cluster cases).
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { startGatewayProcess } from '../support/gateway-process.js'
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
import { makeTlsFiles, startRedisCluster, startSentinel } from '../support/redis-topologies.js'
import { answerWithNewResponses, postResponse, type Exchange } from '../support/responses-client.js'

interface Readiness { status: string, store: { kind: string, state: string, detail?: string } }

async function readiness (gateway: RunningGateway): Promise<Readiness> {
  const res = await request(`${gateway.origin}/readyz`)
  return await res.body.json() as Readiness
}

/** Polls /readyz until the store is degraded for a reason matching `reason` (at first it is degraded as `connecting`). */
async function degradedBy (gateway: RunningGateway, reason: RegExp): Promise<Readiness> {
  return await until(async () => await readiness(gateway), (ready) => ready.store.state === 'degraded' && reason.test(ready.store.detail ?? ''), `saw the store degraded by ${reason}`)
}

/** Polls /readyz until the store is in `state`: it changes on its Redis client's events, which a test cannot hook. */
async function storeBecomes (gateway: RunningGateway, state: 'ok' | 'degraded'): Promise<Readiness> {
  return await until(async () => await readiness(gateway), (ready) => ready.store.state === state, `saw the store become ${state}`)
}

interface Replicas {
  upstream: MockUpstream
  start: (env: Record<string, string>) => Promise<RunningGateway>
  post: (gateway: RunningGateway, body: unknown, headers?: Record<string, string>) => Promise<Exchange>
}

/** A mock upstream answering with new response ids, and a way to start gateways in front of it. */
async function replicas (t: Test): Promise<Replicas> {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  return {
    upstream,
    start: async (env) => {
      const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_TIMEOUT_MS: '500', ...env })
      t.teardown(gateway.close)
      return gateway
    },
    post: async (gateway, body, headers = {}) => await postResponse(gateway, upstream, answered, body, { headers })
  }
}

/** Made through one, continued through the other, which never saw it: a session shared through Redis. */
async function sharesSessions (t: Test, { post }: Replicas, one: RunningGateway, two: RunningGateway): Promise<void> {
  const made = await post(one, { model: 'gpt-5', input: 'start', stream: true })
  t.equal(made.status, 200)
  const continued = await post(two, { model: 'gpt-5', previous_response_id: made.responseId })
  t.equal(continued.session, made.session, 'a response made through gateway 1 is continued through gateway 2')
  t.equal(continued.source, 'previous_response')
}

t.test('over TLS (rediss:// and a CA file) two gateways share sessions; a wrong CA leaves the store degraded, still serving', needs('redis-server-tls', 'openssl'), async (t) => {
  const tls = await makeTlsFiles(t.testdir({}))
  const redis = await startRedis({ tls })
  t.teardown(redis.close)
  t.match(redis.url, /^rediss:/)
  const gateways = await replicas(t)
  const one = await gateways.start({ REDIS_URL: redis.url, REDIS_TLS_CA_FILE: tls.caFile })
  const two = await gateways.start({ REDIS_URL: redis.url, REDIS_TLS_CA_FILE: tls.caFile })
  for (const gateway of [one, two]) await storeBecomes(gateway, 'ok')
  await sharesSessions(t, gateways, one, two)

  const wrongCa = await gateways.start({ REDIS_URL: redis.url, REDIS_TLS_CA_FILE: tls.otherCaFile })
  const degraded = await storeBecomes(wrongCa, 'degraded')
  t.match(degraded, { status: 'degraded', store: { kind: 'redis', detail: /redis unavailable/ } }, 'a certificate from another CA is refused')
  t.equal((await gateways.post(wrongCa, { model: 'gpt-5', input: 'still served' })).status, 200, 'and requests are still served')

  const unverified = await gateways.start({ REDIS_URL: redis.url, REDIS_TLS_CA_FILE: tls.otherCaFile, REDIS_TLS_VERIFY: 'false' })
  await storeBecomes(unverified, 'ok')
  t.pass('with REDIS_TLS_VERIFY=false the same certificate is accepted')
})

t.test('with an ACL user and password two gateways share sessions; a wrong password is degraded but serving, and no password is logged', needs('redis-server'), async (t) => {
  const password = 'pw-7c1f0e9a-right'
  const wrongPassword = 'pw-2b8d4e61-wrong'
  const redis = await startRedis({ args: ['--user', 'default', 'off', '--user', 'gateway', 'on', `>${password}`, '~*', '&*', '+@all'] })
  t.teardown(redis.close)
  const gateways = await replicas(t)
  const inUrl = await gateways.start({ REDIS_URL: `redis://gateway:${password}@127.0.0.1:${redis.port}` })
  const inSettings = await gateways.start({ REDIS_URL: redis.url, REDIS_USERNAME: 'gateway', REDIS_PASSWORD: password })
  for (const gateway of [inUrl, inSettings]) await storeBecomes(gateway, 'ok')
  await sharesSessions(t, gateways, inUrl, inSettings)

  const wrong = await gateways.start({ REDIS_URL: redis.url, REDIS_USERNAME: 'gateway', REDIS_PASSWORD: wrongPassword, LOG_LEVEL: 'debug' })
  const refused = (code: string): RegExp => new RegExp(`redis unavailable \\(Redis refused the gateway's credentials \\(${code}\\): check redis\\.password \\(REDIS_PASSWORD\\)`)
  t.match(await degradedBy(wrong, refused('WRONGPASS')), { status: 'degraded' }, 'a wrong password is degraded, naming the setting')
  t.equal((await gateways.post(wrong, { model: 'gpt-5', input: 'still served' })).status, 200, 'requests are still served')
  const noAuth = await gateways.start({ REDIS_URL: redis.url })
  await degradedBy(noAuth, refused('NOAUTH'))
  t.pass('without credentials the store is degraded too')

  for (const gateway of [inUrl, inSettings, wrong, noAuth]) {
    const text = gateway.logText() + JSON.stringify(await readiness(gateway))
    t.notOk(text.includes(password) || text.includes(wrongPassword), 'no password in its logs or /readyz')
  }
  t.ok(wrong.logs.some((line) => line.level === 40 || line.level === 'warn'), 'the wrong password was logged as an outage')
})

t.test('through a Redis Cluster two gateways share lineage and per-session usage, with keys on several nodes', needs('redis-server', 'redis-cli'), async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(cluster.close)
  const gateways = await replicas(t)
  const one = await gateways.start({ REDIS_CLUSTER_NODES: cluster.addresses })
  const two = await gateways.start({ REDIS_CLUSTER_NODES: cluster.addresses })
  for (const gateway of [one, two]) await storeBecomes(gateway, 'ok')
  await sharesSessions(t, gateways, one, two)

  // Three lineage keys bound in one request: they hash to different slots, so on different nodes.
  const first = await gateways.post(one, { model: 'gpt-5', input: 'first', stream: true })
  const chained = await gateways.post(one, { model: 'gpt-5', previous_response_id: first.responseId, conversation: 'conv-cluster', prompt_cache_key: 'pck-cluster', stream: true })
  t.equal(chained.session, first.session)
  const [byConversation, byCacheKey, byResponse] = [
    await gateways.post(two, { model: 'gpt-5', conversation: 'conv-cluster' }),
    await gateways.post(two, { model: 'gpt-5', prompt_cache_key: 'pck-cluster' }),
    await gateways.post(two, { model: 'gpt-5', previous_response_id: chained.responseId, conversation: 'conv-other', prompt_cache_key: 'pck-other' })
  ]
  t.same([byConversation.session, byCacheKey.session, byResponse.session], [first.session, first.session, first.session],
    'each key leads gateway 2 to the session gateway 1 bound it to (not the one it would derive itself)')

  await gateways.post(one, { model: 'gpt-5', input: 'usage', stream: true }, { 'session-id': 's-cluster' })
  await gateways.post(two, { model: 'gpt-5', input: 'more', stream: true }, { 'session-id': 's-cluster' })
  const usage = async (gateway: RunningGateway): Promise<Record<string, unknown>> => await (await request(`${gateway.origin}/gateway/sessions/s-cluster`)).body.json() as Record<string, unknown>
  const counted = await until(async () => await usage(one), (u) => u.requests === 2, 'saw usage from both gateways add up')
  t.match(counted, { id: 's-cluster', requests: 2, input_tokens: 240, cached_tokens: 200 }, 'usage from both gateways adds up in one total')
  t.same(await usage(two), counted, 'and both read the same')
  const list = await (await request(`${two.origin}/gateway/sessions`)).body.json() as { data: Array<{ id: string }> }
  t.ok(list.data.some((s) => s.id === 's-cluster'), 'the recent-sessions list reads across nodes too')

  const holding = await Promise.all(cluster.nodes.map(async (node) => await keysOn(node.port)))
  t.ok(holding.filter((n) => n > 0).length >= 2, `the keys are spread over the nodes (${holding.join(', ')})`)
})

t.test('through Sentinel two gateways find the master and share sessions', needs('redis-server'), async (t) => {
  const master = await startRedis()
  t.teardown(master.close)
  const sentinel = await startSentinel(master.port, 'gateway-master')
  t.teardown(sentinel.close)
  const gateways = await replicas(t)
  const env = { REDIS_SENTINELS: sentinel.address, REDIS_SENTINEL_NAME: 'gateway-master' }
  const one = await gateways.start(env)
  const two = await gateways.start(env)
  for (const gateway of [one, two]) await storeBecomes(gateway, 'ok')
  await sharesSessions(t, gateways, one, two)
})

t.test('a hung Sentinel (accepting connections, answering nothing) is passed over for the next one', needs('redis-server'), async (t) => {
  const master = await startRedis()
  t.teardown(master.close)
  const hung = await startSentinel(master.port, 'gateway-master')
  t.teardown(hung.close)
  const answering = await startSentinel(master.port, 'gateway-master')
  t.teardown(answering.close)
  hung.pause()
  const gateways = await replicas(t)
  const env = { REDIS_SENTINELS: `${hung.address},${answering.address}`, REDIS_SENTINEL_NAME: 'gateway-master' }
  const one = await gateways.start(env)
  const two = await gateways.start(env)
  for (const gateway of [one, two]) await storeBecomes(gateway, 'ok')
  await sharesSessions(t, gateways, one, two)
})

t.test('through a Sentinel with a password of its own, in front of data nodes with an ACL user: sessions shared; a missing or wrong password is named, the store degraded but serving', needs('redis-server'), async (t) => {
  const data = { username: 'gateway', password: 'pw-data-51c7' }
  const sentinelPassword = 'pw-sentinel-a93e'
  const watcher = { username: 'watcher', password: 'pw-watcher-0d4b' }
  const master = await startRedis({ args: ['--user', 'default', 'off', '--user', data.username, 'on', `>${data.password}`, '~*', '&*', '+@all'] })
  t.teardown(master.close)
  const sentinel = await startSentinel(master.port, 'auth-master', { dataAuth: data, requirePass: sentinelPassword, user: watcher })
  t.teardown(sentinel.close)
  const gateways = await replicas(t)
  const env = { REDIS_SENTINELS: sentinel.address, REDIS_SENTINEL_NAME: 'auth-master', REDIS_USERNAME: data.username, REDIS_PASSWORD: data.password }
  const withPassword = await gateways.start({ ...env, REDIS_SENTINEL_PASSWORD: sentinelPassword })
  const withUser = await gateways.start({ ...env, REDIS_SENTINEL_USERNAME: watcher.username, REDIS_SENTINEL_PASSWORD: watcher.password })
  for (const gateway of [withPassword, withUser]) await storeBecomes(gateway, 'ok')
  await sharesSessions(t, gateways, withPassword, withUser)

  const sentinelRefused = (code: string): RegExp => new RegExp(`the Sentinels refused the gateway's credentials \\(${code}\\): check redis\\.sentinel_password \\(REDIS_SENTINEL_PASSWORD\\)`)
  const missing = await gateways.start(env)
  t.match(await degradedBy(missing, sentinelRefused('NOAUTH')), { status: 'degraded' }, 'no Sentinel password: /readyz names the setting')
  const wrong = await gateways.start({ ...env, REDIS_SENTINEL_PASSWORD: 'pw-wrong-77f2' })
  await degradedBy(wrong, sentinelRefused('WRONGPASS'))
  t.pass('a wrong one too')
  t.equal((await gateways.post(wrong, { model: 'gpt-5', input: 'still served' })).status, 200, 'and requests are still served')
  const wrongData = await gateways.start({ ...env, REDIS_PASSWORD: 'pw-wrong-data-3b1a', REDIS_SENTINEL_PASSWORD: sentinelPassword })
  await degradedBy(wrongData, /Redis refused the gateway's credentials \(WRONGPASS\): check redis\.password \(REDIS_PASSWORD\)/)
  t.pass("the Sentinels' password right and the data nodes' wrong: the data nodes' is named")

  const cli = startGatewayProcess(t, { ...env, REDIS_SENTINEL_PASSWORD: 'pw-wrong-77f2', HOST: '127.0.0.1', PORT: '0' })
  const warned = await cli.waitForLog((line) => line.msg === 'session store: redis not reachable at start, deciding sessions locally until it is')
  t.match(warned.reason, sentinelRefused('WRONGPASS'), 'the CLI warns at start, naming the setting')
  const port = await cli.port()
  t.match(await (await request(`http://127.0.0.1:${port}/readyz`)).body.json(), { status: 'degraded' }, 'and keeps serving, degraded')

  for (const gateway of [withPassword, withUser, missing, wrong, wrongData]) {
    const text = gateway.logText() + JSON.stringify(await readiness(gateway))
    t.notOk([data.password, sentinelPassword, watcher.password, 'pw-wrong'].some((pw) => text.includes(pw)), 'no password in its logs or /readyz')
  }
  t.notOk(cli.stderr().includes('pw-'), 'nor in the CLI\'s stderr')
})


/** How many keys one Cluster node holds. */
async function keysOn (port: number): Promise<number> {
  const node = new Redis({ port, host: '127.0.0.1' })
  try {
    return await node.dbsize()
  } finally {
    node.disconnect()
  }
}
