/**
 * Regressions: a WebSocket client that leaves (FIN) before its 101 is a client gone, whatever
 * the gateway was doing for it: the upstream handshake is aborted, and the exchange is logged
 * once, as ended by the client, and no longer counted as under way.
 */
import { connect, createServer, type Socket } from 'node:net'
import t from 'tap'
import { metricValue } from '../support/endurance.js'
import { startGateway } from '../support/gateway.js'
import { needs } from '../support/needs.js'
import { storeState, until } from '../support/polling.js'
import { startRedis } from '../support/redis-server.js'
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

/** A TCP proxy to Redis that can hold the gateway's commands back: a Redis that is slow to answer. */
async function holdingProxy (targetPort: number): Promise<{ port: number, hold: () => Promise<void>, release: () => void, close: () => Promise<void> }> {
  const held: Array<() => void> = []
  let holding = false
  let onHeld = (): void => {}
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const redis = connect(targetPort, '127.0.0.1')
    for (const socket of [client, redis]) {
      sockets.add(socket)
      socket.on('error', () => { client.destroy(); redis.destroy() })
    }
    redis.pipe(client)
    client.on('data', (chunk: Buffer) => {
      if (!holding) return void redis.write(chunk)
      held.push(() => redis.write(chunk))
      onHeld()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port bound')
  return {
    port: address.port,
    /** From now on commands wait; resolves once one is waiting. */
    hold: async () => {
      holding = true
      await new Promise<void>((resolve) => { onHeld = resolve })
    },
    release: () => {
      holding = false
      for (const write of held.splice(0)) write()
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

t.test('regression: a client that leaves while its upstream is looked up in Redis is logged and counted', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const proxy = await holdingProxy(redis.port)
  t.teardown(proxy.close)
  const upstreams = [await startWebSocketUpstream(), await startWebSocketUpstream()]
  t.teardown(async () => { for (const upstream of upstreams) await upstream.close() })
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify(upstreams.map((upstream, i) => ({ name: `u${i}`, url: upstream.url }))),
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`
  })
  t.teardown(gateway.close)
  await until(async () => await storeState(gateway), (state) => state === 'ok', 'connected')

  const lookup = proxy.hold()
  const client = connect(gateway.port, '127.0.0.1')
  client.on('error', () => {})
  t.teardown(() => { client.destroy() })
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()))
  client.write(HANDSHAKE)
  await lookup // the gateway is waiting for Redis
  client.end()
  await clientClosed // the gateway let go of the client
  proxy.release()
  const line = await gateway.waitForLog((l) => l.msg === 'request' && l.transport === 'websocket')
  t.match(line, { status: 0, ended_by: 'client' })
  t.equal(upstreams[0]!.handshakes.length + upstreams[1]!.handshakes.length, 0, 'nothing went upstream')
  t.equal(await metricValue(gateway.origin, 'session_gateway_active_streams{transport="websocket"}'), 0)
})
