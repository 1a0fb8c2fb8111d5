/**
 * Regression: a stall of the gateway's own event loop (a CPU-starved host, a long GC) past
 * REDIS_TIMEOUT_MS was taken for a Redis outage. Timers run before the loop reads its sockets,
 * so a command's timer fired while Redis's answer, in time, sat unread: "redis unavailable" was
 * logged and /readyz said degraded, then "redis is back" at the next answer; a real outage
 * after that was logged a second time (test/slow/endurance-redis.test.ts failed so on a busy
 * host). Real redis-server, real gateway; the stall is made by blocking the loop.
 */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { request } from 'undici'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { startRedis } from '../support/redis-server.js'

const TIMEOUT_MS = 200

async function readiness (gateway: RunningGateway): Promise<{ status: string, store: { state: string } }> {
  const res = await request(`${gateway.origin}/readyz`)
  return await res.body.json() as { status: string, store: { state: string } }
}

/**
 * Blocks this process's event loop past the command timeout, then until Redis has answered a
 * PING sent from another process: Redis handles commands in the order they came, so by then it
 * has answered every command this process sent before the stall, and the answers wait unread.
 */
function stallPastTimeoutAndAnswers (redisPort: number): void {
  const until = performance.now() + TIMEOUT_MS * 1.5
  while (performance.now() < until) { /* a process starved of CPU */ }
  const pong = spawnSync('redis-cli', ['-p', String(redisPort), 'ping'], { encoding: 'utf8' })
  if (pong.stdout.trim() !== 'PONG') throw new Error(`redis did not answer: ${pong.stdout}${pong.stderr}`)
}

t.test('a stall of the gateway itself past REDIS_TIMEOUT_MS, with Redis answering in time, is no Redis outage', needs('redis-server', 'redis-cli'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) })
  t.teardown(gateway.close)
  for (let i = 0; i < 1_000 && (await readiness(gateway)).store.state !== 'ok'; i++); // connects on its client's events
  t.match(await readiness(gateway), { status: 'ready', store: { state: 'ok' } }, 'connected to Redis')

  const looked = gateway.store.lookup(['resp:resp_during_stall'])
  stallPastTimeoutAndAnswers(redis.port)
  await looked // given up at its timeout all the same: no request waits longer than REDIS_TIMEOUT_MS

  t.match(await readiness(gateway), { status: 'ready', store: { state: 'ok' } }, '/readyz stays ready: Redis answered in time')
  t.equal(gateway.logs.filter((l) => String(l.msg).includes('redis unavailable')).length, 0, 'no outage is logged')
  t.equal(gateway.logs.filter((l) => String(l.msg).includes('redis is back')).length, 0, 'nor a recovery')
})
