/**
 * A Sentinel failover under running gateways: a master, its replica and one Sentinel (quorum
 * 1, quick to call the master down). The master is SIGKILLed and the Sentinel promotes the
 * replica. Meanwhile requests are answered as during any Redis outage (decided locally,
 * `/readyz` 200 `degraded`); after it both gateways follow the new master, what was written
 * before the failover (and had replicated) is still shared, and the outage's bindings are
 * replayed to the new master. Real redis-server processes, waits on conditions only.
 */
import t from 'tap'
import { request } from 'undici'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
import { ask, startReplica, startSentinel } from '../support/redis-topologies.js'
import { answerWithNewResponses, postResponse, type Exchange } from '../support/responses-client.js'

const NAME = 'failover-master'
const PREFIX = 'session-gateway:'

t.test('a Sentinel failover: requests are answered throughout, then the promoted replica serves what was written before', needs('redis-server'), async (t) => {
  const master = await startRedis()
  t.teardown(master.close)
  const replica = await startReplica(master)
  t.teardown(replica.close)
  const sentinel = await startSentinel(master.port, NAME, { downAfterMs: 1000, failoverTimeoutMs: 5000, replicas: 1 })
  t.teardown(sentinel.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const post = async (gateway: RunningGateway, body: unknown, headers: Record<string, string> = {}): Promise<Exchange> =>
    await postResponse(gateway, upstream, answered, body, { headers })
  const start = async (): Promise<RunningGateway> => {
    const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_SENTINELS: sentinel.address, REDIS_SENTINEL_NAME: NAME, REDIS_TIMEOUT_MS: '500' })
    t.teardown(gateway.close)
    return gateway
  }
  const [one, two] = [await start(), await start()]
  for (const gateway of [one, two]) await until(async () => await storeState(gateway), (state) => state === 'ok', 'saw the gateway find the master through the Sentinel')

  // Before: a response made through gateway one, and a session's usage; both replicated.
  const made = await post(one, { model: 'gpt-5', input: 'before the failover', stream: true })
  t.equal(made.status, 200)
  t.equal((await post(one, { model: 'gpt-5', input: 'counted' }, { 'session-id': 's-failover' })).status, 200)
  await until(async () => await ask(replica.port, ['GET', `${PREFIX}resp:${made.responseId}`]), (owner) => owner === made.session, 'saw the response binding reach the replica')
  await until(async () => await ask(replica.port, ['HGET', `${PREFIX}usage:s-failover`, 'requests']), (n) => n === '1', 'saw the usage reach the replica')

  await master.kill()
  const masterBefore = `127.0.0.1:${master.port}`
  for (const gateway of [one, two]) await until(async () => await storeState(gateway), (state) => state === 'degraded', 'saw the gateway notice the master gone')

  // While the Sentinel still names the dead master: every request is answered, as in any outage.
  const duringOutage: Exchange[] = []
  do {
    duringOutage.push(await post(two, { model: 'gpt-5', input: `during the outage ${duringOutage.length}` }))
    const ready = await request(`${two.origin}/readyz`)
    const body = await ready.body.json() as { status: string }
    if (ready.statusCode !== 200 || body.status !== 'degraded') t.fail(`/readyz during the outage: ${ready.statusCode} ${JSON.stringify(body)}`)
  } while (await sentinel.masterAddress() === masterBefore)
  t.same(duringOutage.map((e) => e.status), duringOutage.map(() => 200), `${duringOutage.length} request(s) during the outage, each answered 200 (decided locally)`)

  await until(async () => await sentinel.masterAddress(), (address) => address === `127.0.0.1:${replica.port}`, 'saw the Sentinel promote the replica')
  for (const gateway of [one, two]) await until(async () => await storeState(gateway), (state) => state === 'ok', 'saw the gateway follow the failover to the new master')

  const continued = await post(two, { model: 'gpt-5', previous_response_id: made.responseId })
  t.equal(continued.session, made.session, 'gateway two, which never saw the response, finds its session on the promoted replica')
  t.equal(continued.source, 'previous_response')

  await two.waitForLog((line) => line.msg === 'session store: bindings made while redis was away are written to it')
  const outageMade = duringOutage[0]!
  const followed = await post(one, { model: 'gpt-5', previous_response_id: outageMade.responseId })
  t.equal(followed.session, outageMade.session, "a response made during the outage is replayed to the new master: gateway one follows gateway two's session")

  t.equal((await post(two, { model: 'gpt-5', input: 'counted again' }, { 'session-id': 's-failover' })).status, 200)
  const usage = async (): Promise<{ requests?: number }> => await (await request(`${one.origin}/gateway/sessions/s-failover`)).body.json() as { requests?: number }
  await until(usage, (u) => u.requests === 2, "saw usage counted before the failover and after it add up on the new master")
  t.pass('usage from before the failover and after it add up in one total')
})
