import type { Server } from 'node:http'

/** Work in flight as shutdown sees it: it may be asked to finish early, then cut. */
export interface Drainable {
  /** Shutdown began: end at the next quiet moment (a WebSocket between responses closes with 1001). */
  closeWhenIdle (): void
  /** The grace period is over: drop it now. */
  cut (): void
}

/** How often idle keep-alive connections are closed while draining. */
const SWEEP_MS = 100

/**
 * Owns shutdown: whether new work is accepted, the exchanges in flight, the grace timer and
 * the idle-connection sweep. SIGTERM → `run`: stop accepting, ask in-flight work to finish
 * (WebSockets at their next idle moment), cut whatever is left after the grace period.
 */
export class Drain {
  readonly #inFlight = new Set<Drainable>()
  #accepting = true

  /** False once shutdown has begun: new requests are refused with 503. */
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

  /**
   * Stops accepting, lets in-flight work finish for up to `graceMs`, then cuts what is left.
   * `closeServer` stops the listener and resolves once every connection has closed. Resolves
   * to the number of exchanges that had to be cut.
   */
  async run (server: Server, graceMs: number, closeServer: () => Promise<void>): Promise<number> {
    this.#accepting = false
    for (const work of [...this.#inFlight]) work.closeWhenIdle()
    let cut = 0
    const grace = setTimeout(() => {
      cut = this.#inFlight.size
      for (const work of [...this.#inFlight]) work.cut()
      server.closeAllConnections()
    }, graceMs)
    // Node keeps a keep-alive connection open after its response has finished, even while the
    // server is closing, so a stream that drains would hold close() until the grace timer.
    // While draining, idle connections are closed as they appear (no per-request hook needed).
    const sweep = setInterval(() => server.closeIdleConnections(), SWEEP_MS)
    try {
      await closeServer()
    } finally {
      clearTimeout(grace)
      clearInterval(sweep)
    }
    return cut
  }
}
