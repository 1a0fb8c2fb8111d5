import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'

/** Longest the drain waits for the kernel's accept queue to empty before closing the listener. */
const MAX_WAIT_MS = 1_000
/** The listener closes only after this long without a new connection (or at MAX_WAIT_MS). */
export const QUIET_MS = 20

/**
 * Waits until the kernel holds no connection for `server` that has finished its handshake but
 * that Node has not accepted yet: closing the listener resets those (the client sees
 * ECONNRESET, not a refusal), although their requests may already be on their way. Linux shows
 * the queue's length as a LISTEN socket's rx_queue in /proc/net/tcp{,6} (elsewhere it reads
 * as empty). It also waits, up to the same limit, until no new connection has come for
 * QUIET_MS: so it takes at least QUIET_MS, on every platform.
 */
export async function acceptQueueEmptied (server: Server): Promise<void> {
  const address = server.address()
  if (address === null || typeof address === 'string') return
  const port = address.port.toString(16).toUpperCase().padStart(4, '0')
  const deadline = performance.now() + MAX_WAIT_MS
  // A burst of connections still arriving keeps the listener open until it passes: the queue
  // read empty a moment ago says nothing about the next connection of a burst, and closing
  // in the middle of one resets whichever completed its handshake in between.
  let lastConnectionAt = performance.now()
  const onConnection = (): void => { lastConnectionAt = performance.now() }
  server.on('connection', onConnection)
  try {
    while (performance.now() < deadline) {
      const queued = await queuedConnections(port)
      if (queued === 0 && performance.now() - lastConnectionAt >= QUIET_MS) return
      // Queued ones: let the event loop accept them. None: look again in a millisecond.
      await new Promise((resolve) => queued === 0 ? setTimeout(resolve, 1) : setImmediate(resolve))
    }
  } finally {
    server.off('connection', onConnection)
  }
}

async function queuedConnections (hexPort: string): Promise<number> {
  let queued = 0
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = await readFile(file, 'latin1')
    } catch {
      continue
    }
    for (const line of text.split('\n')) {
      const fields = line.trim().split(/\s+/)
      // local_address is ADDR:PORT, st 0A is LISTEN, tx_queue:rx_queue in hex.
      if (fields[3] !== '0A' || !fields[1]?.endsWith(':' + hexPort)) continue
      queued += parseInt(fields[4]?.split(':')[1] ?? '0', 16)
    }
  }
  return queued
}
