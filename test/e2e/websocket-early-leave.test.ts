/**
 * Regressions: a WebSocket client that leaves (FIN) before its 101 is a client gone, whatever
 * the gateway was doing for it: the upstream handshake is aborted, and the exchange is logged
 * once, as ended by the client, and no longer counted as under way.
 */
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { metricValue } from '../support/endurance.js'
import { startGateway } from '../support/gateway.js'
import { startWebSocketUpstream } from '../support/websocket-upstream.js'

const HANDSHAKE = 'GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'

/** Resolves when the gateway has let go of the upstream connection (its FIN or reset arrived). */
function released (socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('end', () => resolve())
    socket.once('close', () => resolve())
    socket.resume()
  })
}

t.test('regression: a client that sends FIN while the upstream handshake is under way ends it', async (t) => {
  const upstream = await startWebSocketUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  const upstreamSockets: Socket[] = []
  upstream.handleUpgrade((_req, socket) => { upstreamSockets.push(socket) }) // never answers
  const handshake = upstream.nextHandshake()
  const client = connect(gateway.port, '127.0.0.1')
  client.on('error', () => {})
  t.teardown(() => { client.destroy() })
  client.write(HANDSHAKE)
  await handshake
  const upstreamReleased = released(upstreamSockets[0]!)
  client.end() // FIN: the client has left, its connection half-closed
  await upstreamReleased
  t.pass('the upstream handshake was aborted')
  const line = await gateway.waitForLog((l) => l.msg === 'request' && l.transport === 'websocket')
  t.match(line, { status: 0, ended_by: 'client' })
  t.equal(await metricValue(gateway.origin, 'session_gateway_active_streams{transport="websocket"}'), 0, 'nothing counted as under way')
})
