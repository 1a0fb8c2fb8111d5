/**
 * SHUTDOWN_DELAY_MS: after the signal the gateway goes on accepting and serving while /readyz
 * answers 503, so a load balancer stops sending before the listener closes.
 */
import t from 'tap'
import { request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { tryConnect } from '../support/gateway-process.js'

t.test('during SHUTDOWN_DELAY_MS /readyz is 503 while new connections are still accepted and served', async (t) => {
  const { gateway, upstream } = await startGatewayWithUpstream(t, { SHUTDOWN_DELAY_MS: '60000', SHUTDOWN_GRACE_MS: '1000' })
  const before = await request(`${gateway.origin}/readyz`)
  t.equal(before.statusCode, 200)
  await before.body.dump()

  const closing = gateway.gateway.close()
  const ready = await request(`${gateway.origin}/readyz`)
  t.equal(ready.statusCode, 503, '/readyz says shutting down at once')
  t.match(await ready.body.json(), { status: 'shutting_down' })
  const served = await request(`${gateway.baseURL}/models`, { headers: { 'session-id': 'during-delay' } })
  t.equal(served.statusCode, 200, 'a request on a new connection is still served')
  await served.body.dump()
  t.equal(upstream.requests.at(-1)?.headers['session-id'], 'during-delay')
  t.equal(await tryConnect(gateway.port), 'connected', 'the listener is still open')

  // Closing again (the CLI does on a second SIGTERM) skips the rest of the delay.
  t.equal(await gateway.gateway.close(), 0, 'it drains at once and cuts nothing')
  t.equal(await closing, 0)
  t.equal(await tryConnect(gateway.port), 'ECONNREFUSED', 'the listener is closed')
})
