import type { Server } from 'node:http'
import { Server as NetServer, type Socket } from 'node:net'
import { acceptQueueEmptied } from './accept-queue.js'

/** Work in flight as shutdown sees it: it may be asked to finish early, then cut. */
export interface Drainable {
  /** Shutdown began: end at the next quiet moment (a WebSocket between responses closes with 1001). */
  closeWhenIdle (): void
  /** The grace period is over: drop it now. */
  cut (): void
}

export interface DrainTimes {
  /** After the signal, how long to go on accepting and serving while /readyz says 503. */
  delayMs: number
  /** Then how long in-flight work may run on before it is cut. */
  graceMs: number
}

/** How often idle keep-alive connections are closed while draining. */
const SWEEP_MS = 100
/** A connection accepted but silent this long into the drain has nothing coming: it is closed. */
const SILENT_CONNECTION_MS = 1_000

/** Node's own list of a server's connections (`idle()` = no request being read or answered). */
interface ConnectionsList { idle: () => Array<{ socket: Socket }> }

/** The list Node ≥ 18.14 keeps under a symbol once the server listens; undefined elsewhere. */
function connectionsOf (server: Server): ConnectionsList | undefined {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections')
  const list = key === undefined ? undefined : (server as unknown as Record<symbol, ConnectionsList | undefined>)[key]
  return typeof list?.idle === 'function' ? list : undefined
}

/**
 * Owns shutdown: whether the gateway still takes new work, the exchanges in flight, the grace
 * timer and the closing of idle connections. SIGTERM → `run`: after `delayMs` (readiness
 * already 503), stop listening, serve every request that reached an accepted connection (with
 * `Connection: close`), ask in-flight work to finish (WebSockets at their next idle moment),
 * and cut whatever is left after the grace period.
 */
export class Drain {
  readonly #inFlight = new Set<Drainable>()
  #ready = true
  #accepting = true
  #endDelay: (() => void) | undefined

  /** False once shutdown has begun: /readyz answers 503 so load balancers stop sending. */
  get ready (): boolean {
    return this.#ready
  }

  /** False once the listener has closed: requests still arriving on open connections are served and their connection closed. */
  get accepting (): boolean {
    return this.#accepting
  }

  get inFlight (): number {
    return this.#inFlight.size
  }

  add (work: Drainable): void {
    this.#inFlight.add(work)
    if (!this.#accepting) work.closeWhenIdle()
  }

  delete (work: Drainable): void {
    this.#inFlight.delete(work)
  }

  /** Ends the shutdown delay now (a second SIGTERM): the drain proper begins. */
  skipDelay (): void {
    this.#endDelay?.()
  }

  /** Drains `server`: resolves once every connection has closed, to the number of exchanges that had to be cut. */
  async run (server: Server, times: DrainTimes): Promise<number> {
    this.#ready = false
    if (times.delayMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, times.delayMs)
        this.#endDelay = () => { clearTimeout(timer); resolve() }
      })
    }
    // Connections the kernel completed but Node has not accepted yet are taken first: closing
    // the listener would reset them.
    await acceptQueueEmptied(server).catch(() => {})
    const allClosed = closeListener(server)
    this.#accepting = false
    const startedAt = performance.now()
    for (const work of [...this.#inFlight]) work.closeWhenIdle()
    let cut = 0
    const grace = setTimeout(() => {
      cut = this.#inFlight.size
      for (const work of [...this.#inFlight]) work.cut()
      server.closeAllConnections()
    }, times.graceMs)
    // Node keeps a keep-alive connection open after its response has finished, even while the
    // server is closing: idle ones are closed as they appear, but only once they have served a
    // request (or stayed silent a while), so a request whose bytes are still unread is served.
    const sweep = setInterval(() => closeIdleConnections(server, performance.now() - startedAt > SILENT_CONNECTION_MS), SWEEP_MS)
    try {
      await allClosed
    } finally {
      clearTimeout(grace)
      clearInterval(sweep)
    }
    return cut
  }
}

/**
 * Closes the listener at once and resolves once every connection has closed. Not
 * `server.close()`: as Node ≥ 19 does it, that also destroys every idle connection, and an
 * accepted connection whose request Node has not read yet counts as idle, so its request would
 * be reset although it reached the gateway; the drain closes connections itself.
 */
async function closeListener (server: Server): Promise<void> {
  await new Promise<void>((resolve) => { NetServer.prototype.close.call(server, () => resolve()) })
}

function closeIdleConnections (server: Server, silentToo: boolean): void {
  const list = connectionsOf(server)
  if (list === undefined) {
    server.closeIdleConnections()
    return
  }
  for (const { socket } of list.idle()) {
    const answering = (socket as Socket & { _httpMessage?: { finished: boolean } | null })._httpMessage
    if (answering !== null && answering !== undefined && !answering.finished) continue
    if (socket.bytesRead > 0 || silentToo) socket.destroy()
  }
}
