/**
 * Two replicas bind a session to different upstreams: one while it cannot reach Redis (its
 * first binding queued), the other through Redis. The queued first binding, replayed, is kept
 * out by the other's, and the replica takes Redis's binding into its local copy too, so when it
 * must decide locally again (Redis away once more) it still routes the session where every
 * replica does. Regression: its local copy kept its own choice, and routed there. Real
 * redis-server, real upstream processes, two gateways.
 */
import t from 'tap'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { replicasSharingRedis, servedBy } from '../support/redis-replicas.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

const REPLAYED = 'session store: bindings made while redis was away are written to it'

t.test("regression: a replica whose first binding Redis kept out routes the session by Redis's binding, even deciding locally", needs('redis-server'), async (t) => {
  // Replica two reaches Redis through the proxy, cut for its outages.
  const { ups, shared, proxy, direct: one, cut: two } = await replicasSharingRedis(t)

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
