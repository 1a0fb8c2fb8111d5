/**
 * An upstream whose answer is not HTTP (a malformed status line) fails like a reset does: before
 * any byte went to the client the request is retried on the next upstream, the failure counts
 * as `kind="protocol"` against the upstream that sent it, and the session is rebound.
 */
import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../support/gateway.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { startRawUpstream } from '../support/raw-upstream.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

t.test('a malformed answer before any byte is retried on the next upstream and counted as a protocol error', async (t) => {
  const garbled = await startRawUpstream({ onRequest: (_request, socket) => socket.end('HTTP/1.1 2OO NOT A STATUS\r\n\r\n') })
  const sound = await startMockUpstream()
  t.teardown(garbled.close)
  t.teardown(sound.close)
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify([{ name: 'garbled', url: garbled.url }, { name: 'sound', url: sound.url }]) })
  t.teardown(gateway.close)
  const [session] = sessionsHomedOn('garbled', ['garbled', 'sound'], 1, 'malformed')
  const send = async (): Promise<number> => {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: JSON.stringify({ model: 'gpt-test', input: 'hi' }), headers: { 'content-type': 'application/json', 'session-id': session! } })
    await res.body.dump()
    return res.statusCode
  }

  t.equal(await send(), 200, 'the client gets the next upstream\'s answer')
  t.equal(garbled.requests.length, 1, 'the session went to its own upstream first')
  t.equal(sound.requests.length, 1, 'then to the next one')
  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  t.match(metrics, /^session_gateway_upstream_errors_total\{kind="protocol",upstream="garbled"\} 1$/m, 'counted as a protocol error of the upstream that sent it')
  t.equal(await send(), 200)
  t.equal(garbled.requests.length, 1, 'the session was rebound: the next request goes to the sound upstream directly')
})
