/**
 * A session moved by a failover while Redis was away stays moved once Redis is back: the new
 * binding is replayed into Redis over the one it held from before the outage, so neither this
 * replica nor another sends the session back to its first upstream when that returns; and where
 * a response made meanwhile was made is replayed too. Real redis-server, real upstream
 * processes killed and restarted.
 */
import t from 'tap'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { callAsSession as send, replicasSharingRedis, respondAsSession } from '../support/redis-replicas.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

const REPLAYED = 'session store: bindings made while redis was away are written to it'

t.test('a session moved while Redis was away stays moved when Redis and its first upstream are back, on every replica', needs('redis-server'), async (t) => {
  // Replica one reaches Redis through the proxy, cut for the outage.
  const { ups, shared, proxy, cut: one, direct: two } = await replicasSharingRedis(t)

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

t.test('a response made while Redis was away is sent where it was made by a replica that never saw it, once Redis is back', needs('redis-server'), async (t) => {
  // Each upstream is its own group (the default): a response exists only where it was made.
  const { ups, shared, proxy, cut: one, direct: two } = await replicasSharingRedis(t)
  const [session] = sessionsHomedOn('a', ['a', 'b'], 1, 'outage-origin')
  t.equal((await send(one, session!)).upstream, 'a', 'the session starts on a')

  proxy.cut()
  await until(async () => await storeState(one), (s) => s === 'degraded', 'degraded')
  const a = ups.find((u) => u.name === 'a')!
  const b = ups.find((u) => u.name === 'b')!
  await a.kill()
  const made = await respondAsSession(one, session!)
  t.equal(made.upstream, 'b', 'made on b, by a failover while Redis is away')

  proxy.restore()
  await one.waitForLog((line) => line.msg === REPLAYED)
  t.equal(await shared.get(`session-gateway:origin:resp:${made.id!}`), 'b', 'Redis holds where it was made')

  // The session then moves on (b fails), so its binding no longer says where that response is.
  await a.restart()
  await b.kill()
  t.equal((await send(two, session!)).upstream, 'a', 'a failover moves the session to a')
  await b.restart()
  const continued = await respondAsSession(two, session!, { previous_response_id: made.id })
  t.equal(continued.status, 200)
  t.equal(continued.upstream, 'b', 'replica two sends it to b, where it exists, not with the session to a')
})
