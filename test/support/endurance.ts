/**
 * What the endurance tests measure the gateway with: hashes, its own bookkeeping read from
 * /metrics, the sockets a server holds, the process's file descriptors, and a forced GC to
 * see whether finished exchanges are really let go.
 */
import { createHash } from 'node:crypto'
import { readdirSync } from 'node:fs'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Agent, request, type Dispatcher } from 'undici'

export function sha256 (data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A promise and the function that settles it: the test's hand on a paced upstream. */
export function gate (): { opened: Promise<void>, open: () => void } {
  let open = (): void => {}
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { opened, open }
}

/**
 * The value of one sample on the gateway's /metrics, named as it is written there, e.g.
 * `session_gateway_upstream_errors_total{kind="protocol"}`; 0 when absent. Scraped on a
 * connection of its own, closed after, unless `dispatcher` is given.
 */
export async function metricValue (origin: string, sample: string, dispatcher?: Dispatcher): Promise<number> {
  const own = dispatcher === undefined ? new Agent({ connections: 1 }) : undefined
  let text: string
  try {
    const res = await request(`${origin}/metrics`, { dispatcher: dispatcher ?? own })
    text = await res.body.text()
  } finally {
    await own?.close() // no idle keep-alive connection left to the gateway
  }
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '))
  return line === undefined ? 0 : Number(line.slice(sample.length + 1))
}

/** `session_gateway_active_streams{transport="http"}`: the exchanges the gateway has under way (its `inFlight`). */
export async function activeStreams (origin: string, dispatcher?: Dispatcher): Promise<number> {
  return await metricValue(origin, 'session_gateway_active_streams{transport="http"}', dispatcher)
}

export interface SocketTracker {
  /** Sockets the server has accepted since tracking began. */
  readonly accepted: () => number
  /** Resolves once every socket accepted so far has closed. */
  allClosed: () => Promise<void>
  /** `server.getConnections()`, as a promise. */
  open: () => Promise<number>
}

/** Follows every connection `server` accepts from now on, until it closes. */
export function trackSockets (server: Server): SocketTracker {
  const closed: Array<Promise<void>> = []
  server.on('connection', (socket: Socket) => {
    closed.push(new Promise((resolve) => socket.once('close', () => resolve())))
  })
  return {
    accepted: () => closed.length,
    allClosed: async () => { await Promise.all(closed) },
    open: async () => await new Promise((resolve, reject) => server.getConnections((err, count) => err === null ? resolve(count) : reject(err)))
  }
}

/** File descriptors this process holds right now (Linux). */
export function openFds (): number {
  return readdirSync('/proc/self/fd').length
}

/**
 * A full, synchronous garbage collection. tap does not start node with --expose-gc, so the flag is
 * turned on now and `gc` taken from a fresh context, where V8 installs it.
 */
export function forceGc (): void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  gc()
}

/** Yields to the event loop once (a macrotask): lets 'close' callbacks and finalizers run. */
export async function turn (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

export interface HttpHead {
  status: number
  headers: Record<string, string>
  /** Bytes after the head that came in the same read. */
  rest: Buffer
}

/**
 * Reads a response head off a raw socket (resuming it), returning what followed it. Rejects
 * when the socket closes first, with what had arrived.
 */
export async function readHead (socket: Socket): Promise<HttpHead> {
  return await new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk])
      const end = seen.indexOf('\r\n\r\n')
      if (end === -1) return
      cleanup()
      socket.pause()
      const [statusLine = '', ...lines] = seen.subarray(0, end).toString('latin1').split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, rest: seen.subarray(end + 4) })
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error(`the connection closed before a response head: ${JSON.stringify(seen.toString('latin1'))}`))
    }
    const cleanup = (): void => {
      socket.off('data', onData)
      socket.off('close', onClose)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.resume()
  })
}
