/**
 * Regression: behind one address that moves on failover (a managed Redis's primary endpoint,
 * a DNS name, a TCP proxy), the old primary becomes a replica and keeps the gateway's
 * connection open. Every write then got `READONLY` on that connection, for as long as it
 * stayed open: bindings never reached the new primary (each replay failing again), usage was
 * lost from the shared totals, and the store flapped between `redis unavailable` and `redis is
 * back`. A `READONLY` answer now makes the client reconnect, which finds the new primary.
 */
import t from 'tap'
import { startGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
import { ask } from '../support/redis-topologies.js'
import { answerWithNewResponses, postResponse } from '../support/responses-client.js'
import { startTcpProxy } from '../support/tcp-proxy.js'

const PREFIX = 'session-gateway:'

t.test('regression: after a failover behind one address, a READONLY answer reconnects the store to the new primary', needs('redis-server'), async (t) => {
  const old = await startRedis()
  t.teardown(old.close)
  const fresh = await startRedis()
  t.teardown(fresh.close)
  const endpoint = await startTcpProxy(old.port)
  t.teardown(endpoint.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: `redis://127.0.0.1:${endpoint.port}` })
  t.teardown(gateway.close)
  await until(async () => await storeState(gateway), (state) => state === 'ok', 'saw the gateway connect')
  const post = async (body: unknown, headers: Record<string, string> = {}): ReturnType<typeof postResponse> =>
    await postResponse(gateway, upstream, answered, body, { headers })

  const before = await post({ model: 'gpt-5', conversation: 'conv_before' })
  await until(async () => await ask(old.port, ['GET', `${PREFIX}conv:conv_before`]), (owner) => owner === before.session, 'saw the binding on the first primary')

  // The failover: the old primary is now a replica of the new one, and the address names the new one.
  await ask(old.port, ['REPLICAOF', '127.0.0.1', fresh.port])
  endpoint.retarget(fresh.port)

  const after = await post({ model: 'gpt-5', conversation: 'conv_after' })
  t.equal(after.status, 200, 'the request is answered, whatever Redis says')
  await until(async () => await ask(fresh.port, ['GET', `${PREFIX}conv:conv_after`]), (owner) => owner === after.session, 'saw the binding reach the new primary')
  await until(async () => await storeState(gateway), (state) => state === 'ok', 'saw the store ok again')

  t.equal((await post({ model: 'gpt-5', input: 'counted' }, { 'session-id': 's-after-failover' })).status, 200)
  await until(async () => await ask(fresh.port, ['HGET', `${PREFIX}usage:s-after-failover`, 'requests']), (n) => n === '1', 'saw the usage counted on the new primary')
  t.pass('bindings and usage are shared through the new primary')
})
