/**
 * Regression: a REDIS_URL naming a database the server does not have (`/99`, or `/16` on a
 * server with the default 16) logged one outage, then `redis is back`, and the gateway wrote
 * every session into database 0: ioredis reports a refused SELECT as an error event and goes
 * on in the database it is in. The settings refuse a path that is no number for that very
 * reason (it would quietly mean database 0). Now a refused database is an outage like refused
 * credentials: named in `/readyz` and the log, sessions decided locally, nothing written to
 * another database, and the connection retried.
 */
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
import { ask } from '../support/redis-topologies.js'
import { answerWithNewResponses, postResponse } from '../support/responses-client.js'

t.test('regression: a database Redis refuses is a named outage, and nothing is written to database 0', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const answered = answerWithNewResponses(upstream)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, REDIS_URL: `${redis.url}/99` })
  t.teardown(gateway.close)
  const readiness = async (): Promise<{ status: string, store: { state: string, detail?: string } }> =>
    await (await request(`${gateway.origin}/readyz`)).body.json() as { status: string, store: { state: string, detail?: string } }

  const degraded = await until(readiness, (body) => /check redis\.url \(REDIS_URL\)/.test(body.store.detail ?? ''), 'saw /readyz name the refused database')
  t.match(degraded, { status: 'degraded', store: { state: 'degraded', detail: /database/ } })
  t.ok(gateway.logs.some((line) => line.level === 'warn' && /REDIS_URL/.test(String(line.reason))), 'the warning names the setting')

  const first = await postResponse(gateway, upstream, answered, { model: 'gpt-5', conversation: 'conv_db' })
  t.equal(first.status, 200, 'requests are served, decided locally')
  const again = await postResponse(gateway, upstream, answered, { model: 'gpt-5', previous_response_id: first.responseId })
  t.equal(again.session, first.session, 'this replica still keeps its own lineage')
  t.equal(await ask(redis.port, ['DBSIZE']), 0, 'nothing was written to database 0')
  t.match(await readiness(), { store: { state: 'degraded' } }, 'still degraded: no connection was taken for a good one')
  t.equal(gateway.logs.filter((line) => line.msg === 'session store: redis is back, sessions shared again').length, 0, "never 'redis is back'")
})
