import { readFile } from 'node:fs/promises'
import type { Server } from 'node:http'

/** Longest the drain waits for the kernel's accept queue to empty before closing the listener. */
const MAX_WAIT_MS = 1_000

/**
 * Waits until the kernel holds no connection for `server` that has finished its handshake but
 * that Node has not accepted yet: closing the listener resets those (the client sees
 * ECONNRESET, not a refusal), although their requests may already be on their way. Linux shows
 * the queue's length as a LISTEN socket's rx_queue in /proc/net/tcp{,6}; elsewhere this
 * returns at once.
 */
export async function acceptQueueEmptied (server: Server): Promise<void> {
  const address = server.address()
  if (address === null || typeof address === 'string') return
  const port = address.port.toString(16).toUpperCase().padStart(4, '0')
  const deadline = performance.now() + MAX_WAIT_MS
  while (performance.now() < deadline) {
    const queued = await queuedConnections(port)
    if (queued === 0) return
    // Let the event loop accept them.
    await new Promise((resolve) => setImmediate(resolve))
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
