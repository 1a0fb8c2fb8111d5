/**
 * After a failover, the upstream that answered is charged its own time to first byte, not the
 * failed attempts' too: `session_gateway_upstream_ttfb_seconds{upstream}` is how operators
 * compare upstreams, and a slow failure elsewhere (a 503 after seconds, a connect timeout) made a
 * quick upstream look slow. The request's own duration still counts everything.
 */
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../support/gateway.js'
import { replyJson, startMockUpstream } from '../support/mock-upstream.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

/** How long the failing upstream holds the request before its 503: far longer than the sound one takes to answer. */
const HOLD_MS = 2_000

t.test('after a failover the answering upstream\'s time to first byte counts from its own attempt', async (t) => {
  const slowFailure = await startMockUpstream(async (_req, res) => {
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS))
    res.writeHead(503, { 'content-type': 'application/json' })
    res.end('{"error":{"message":"overloaded","type":"server_error","code":null}}')
  })
  const sound = await startMockUpstream(replyJson({ id: 'resp_1', object: 'response' }))
  t.teardown(slowFailure.close)
  t.teardown(sound.close)
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify([{ name: 'slow', url: slowFailure.url }, { name: 'sound', url: sound.url }]) })
  t.teardown(gateway.close)
  const [session] = sessionsHomedOn('slow', ['slow', 'sound'], 1, 'ttfb')

  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: JSON.stringify({ model: 'gpt-test', input: 'hi' }), headers: { 'content-type': 'application/json', 'session-id': session! } })
  await res.body.dump()
  t.equal(res.statusCode, 200, 'the sound upstream answered')
  t.equal(slowFailure.requests.length, 1, 'after the slow one failed')

  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  const sample = (name: string, labels: string): number => Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN)
  const ttfb = sample('session_gateway_upstream_ttfb_seconds_sum', 'transport="http",upstream="sound"')
  const duration = sample('session_gateway_request_duration_seconds_sum', 'transport="http"')
  t.ok(duration >= HOLD_MS / 1000, `the request's duration counts the failed attempt (${duration} s)`)
  t.ok(ttfb < HOLD_MS / 1000, `the sound upstream's time to first byte does not (${ttfb} s)`)
  t.equal(sample('session_gateway_upstream_ttfb_seconds_count', 'transport="http",upstream="sound"'), 1, 'one observation, for the answer')
})
