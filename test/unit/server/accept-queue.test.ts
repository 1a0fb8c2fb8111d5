/**
 * The drain closes its listener only after QUIET_MS without a new connection: a burst of
 * connections still arriving keeps it open (closing mid-burst resets whichever connection
 * completed its handshake in between). Real sockets on loopback.
 */
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { acceptQueueEmptied, QUIET_MS } from '../../../src/server/accept-queue.js'

async function listening (t: Test): Promise<{ server: Server, port: number }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

t.test('regression: it ends only after QUIET_MS with no new connection, never in the middle of a burst', async (t) => {
  const { server, port } = await listening(t)
  const clients: Socket[] = []
  t.teardown(() => { for (const client of clients) client.destroy() })
  const connectedAt: number[] = []
  let endedAt: number | undefined
  const startedAt = performance.now()
  // Each connection, once accepted, opens the next: a burst without a pause for BURST_MS.
  const BURST_MS = 5 * QUIET_MS
  server.on('connection', () => {
    connectedAt.push(performance.now())
    if (endedAt === undefined && performance.now() - startedAt < BURST_MS) clients.push(connect(port, '127.0.0.1'))
  })
  clients.push(connect(port, '127.0.0.1'))
  await acceptQueueEmptied(server)
  endedAt = performance.now()
  const before = connectedAt.filter((at) => at <= endedAt!)
  t.ok(before.length > 1, `connections came during the wait (${before.length})`)
  // The invariant, whatever the host's speed: the last connection before the end was at least
  // QUIET_MS earlier (1 ms for the two listeners' timestamps of one event). A check that only
  // read the kernel's queue returned during the burst, with connections a millisecond apart.
  t.ok(endedAt - before.at(-1)! >= QUIET_MS - 1, `${(endedAt - before.at(-1)!).toFixed(1)} ms passed since the last connection (QUIET_MS ${QUIET_MS})`)
})

t.test('with no connection at all it still waits QUIET_MS', async (t) => {
  const { server } = await listening(t)
  const startedAt = performance.now()
  await acceptQueueEmptied(server)
  t.ok(performance.now() - startedAt >= QUIET_MS - 1, 'it waited the quiet time')
})
