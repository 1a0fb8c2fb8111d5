/**
 * A loopback TCP proxy that can cut one client off from a server that stays up: an outage seen
 * by one replica only, while others (and the test) still reach the server directly. Or it
 * stands for a name that moves to another server (a managed Redis's endpoint after failover).
 */
import { connect, createServer, type Socket } from 'node:net'

export interface TcpProxy {
  port: number
  /** Drops every connection through the proxy, and every new one, until `restore`. */
  cut: () => void
  restore: () => void
  /** New connections go to `port` from now on; open ones stay where they are, as a DNS change leaves them. */
  retarget: (port: number) => void
  close: () => Promise<void>
}

export async function startTcpProxy (targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>()
  let target = targetPort
  let isCut = false
  const server = createServer((client) => {
    if (isCut) {
      client.destroy()
      return
    }
    const upstream = connect(target, '127.0.0.1')
    for (const socket of [client, upstream]) {
      open.add(socket)
      socket.once('close', () => open.delete(socket))
      socket.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port bound')
  const dropAll = (): void => { for (const socket of open) socket.destroy() }
  return {
    port: address.port,
    cut: () => { isCut = true; dropAll() },
    restore: () => { isCut = false },
    retarget: (port) => { target = port },
    close: async () => {
      dropAll()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
