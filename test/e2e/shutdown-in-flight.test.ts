/**
 * A request in flight when the drain begins, its answer not started yet, is answered with
 * `Connection: close`, like one that arrives during the drain. Regression: it said keep-alive,
 * and the drain closed the connection the moment it was idle, racing the client's next request.
 */
import { once } from 'node:events'
import tap from 'tap'
import { received } from '../support/mock-upstream.js'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { idleKeepAliveConnection } from '../support/gateway-process.js'
import { headerOf, rawConnection, rawRequest } from '../support/raw-http.js'

tap.test('regression: a request in flight at shutdown, not yet answered, is answered with Connection: close', async (t) => {
  let answer = (): void => {}
  const answered = new Promise<void>((resolve) => { answer = resolve })
  const { upstream, gateway } = await startGatewayWithUpstream(t, {}, async (_req, res) => {
    await answered
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  const connection = rawConnection(gateway.port)
  t.teardown(() => { connection.destroy() })
  connection.write(rawRequest('GET /v1/models HTTP/1.1', 'Host: x', 'session-id: in-flight'))
  await received(upstream, (r) => r.headers['session-id'] === 'in-flight')

  // The drain closes idle keep-alive connections once it has stopped accepting: this one's
  // close says the in-flight request has been told to finish.
  const idle = await idleKeepAliveConnection(gateway.port)
  const idleClosed = once(idle, 'close')
  const closing = gateway.close()
  await idleClosed
  answer()

  const response = await connection.nextResponse()
  t.equal(response.status, 200, 'it is served')
  t.equal(headerOf(response, 'connection'), 'close', 'and its connection closed after it')
  t.equal(await closing, 0, 'nothing was cut')
})
