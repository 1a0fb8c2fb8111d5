import type { RunningGateway } from './gateway.js'

/**
 * Polls `read` until `done` holds, for states a test cannot hook: a store changes state on its
 * Redis client's events. Fails after 15 s, naming what never happened and the last value read.
 */
export async function until<T> (read: () => T | Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`never ${what}; last: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The session store's state as `/readyz` reports it: `ok`, `degraded`… */
export async function storeState (gateway: RunningGateway): Promise<string> {
  const res = await fetch(`${gateway.origin}/readyz`)
  return ((await res.json()) as { store: { state: string } }).store.state
}
