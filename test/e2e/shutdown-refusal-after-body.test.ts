/**
 * A request whose body is still being read when the drain begins, then refused (here a 503:
 * its conversation's upstream group is down), is answered with `Connection: close`, like every
 * answer during the drain. Regression: it said keep-alive, since only admitted exchanges hear
 * that the drain began, and the drain closed the connection once idle, racing the client's next
 * request.
 */
import { once } from 'node:events'
import { createServer } from 'node:net'
import tap from 'tap'
import { request } from 'undici'
import { startGateway } from '../support/gateway.js'
import { idleKeepAliveConnection } from '../support/gateway-process.js'
import { headerOf, rawConnection, rawRequest } from '../support/raw-http.js'

/** An upstream URL on a loopback port that was just free: nothing listens there. */
async function unreachableUrl (): Promise<string> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return `http://127.0.0.1:${port}/v1`
}

tap.test('regression: a request refused after its body was read, the drain begun meanwhile, is answered with Connection: close', async (t) => {
  const upstreams = [{ name: 'a', url: await unreachableUrl() }, { name: 'b', url: await unreachableUrl() }]
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify(upstreams), UPSTREAM_FAILURES_TO_EJECT: '1', UPSTREAM_COOLDOWN_MS: '600000', UPSTREAM_MAX_COOLDOWN_MS: '600000' })
  t.teardown(async () => { await gateway.close() })
  // One request tries both upstreams and fails on each: both are ejected.
  const failed = await request(`${gateway.baseURL}/models`)
  t.equal(failed.statusCode, 502)
  await failed.body.dump()

  const body = JSON.stringify({ model: 'gpt-test', conversation: 'conv_drain', input: 'hi' })
  const connection = rawConnection(gateway.port)
  t.teardown(() => { connection.destroy() })
  connection.write(rawRequest('POST /v1/responses HTTP/1.1', 'Host: x', 'Content-Type: application/json', `Content-Length: ${body.length}`, 'Expect: 100-continue'))
  // Node answers 100 Continue as it hands the request to the gateway: its body is awaited now.
  t.equal((await connection.nextResponse()).status, 100)

  // The drain closes idle keep-alive connections once it has stopped accepting.
  const idle = await idleKeepAliveConnection(gateway.port)
  const idleClosed = once(idle, 'close')
  const closing = gateway.close()
  await idleClosed

  connection.write(body)
  const refused = await connection.nextResponse()
  t.equal(refused.status, 503, 'refused: its conversation\'s upstream is down')
  t.match(JSON.parse(refused.body.toString()), { error: { code: 'upstream_unavailable' } })
  t.equal(headerOf(refused, 'connection'), 'close', 'and its connection closed after it')
  t.equal(await closing, 0, 'nothing was cut')
})
