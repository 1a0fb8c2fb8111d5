/**
 * Servers that take no port 0 (redis-server, a Sentinel) on a loopback port picked for them.
 * Between the pick and the child's bind another process (a parallel test file) may take the
 * port; a test must then neither fail nor talk to that process. So the child is checked to hold
 * the listener itself, from the kernel's tables as the benchmark checks its nginx
 * (bench/lib/processes.mjs), and is started again on another port when it lost the one picked.
 */
import type { ChildProcess } from 'node:child_process'
import { freePort, hasListener, listeningPorts, PortTakenError } from '../../bench/lib/processes.mjs'

export { PortTakenError }

/** Ports tried before giving up: one is lost only to another bind in the moment of a start. */
const PORT_TRIES = 5

export interface OwnPortOptions {
  /** Every port the child binds, given the one picked (a Cluster node's bus port too); `[port]` by default. */
  ports?: (port: number) => number[]
  /** Where the port comes from: `freePort` by default; a test of this helper hands out a taken one first. */
  pickPort?: () => Promise<number>
}

/** `start(port)`'s child on a picked port it holds itself, started again on another while the picked one was lost. */
export async function startOnOwnPort (start: (port: number) => Promise<ChildProcess>, options: OwnPortOptions = {}): Promise<{ port: number, child: ChildProcess }> {
  const pickPort = options.pickPort ?? freePort
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort()
    try {
      return { port, child: await startOwning(options.ports?.(port) ?? [port], async () => await start(port)) }
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt === PORT_TRIES) throw err
    }
  }
}

/**
 * `start()`'s child once it is ready and holds the listeners on `ports` itself. Rejects with
 * `PortTakenError` when it did not get them: it exited for want of a port (redis-server does),
 * or said it was ready while another process held one, which clients would have reached instead.
 */
export async function startOwning (ports: number[], start: () => Promise<ChildProcess>): Promise<ChildProcess> {
  let child: ChildProcess
  try {
    child = await start()
  } catch (err) {
    // A socket that is no listener (a connection's local port) takes a port too: the bind error says so.
    if (ports.some((port) => hasListener(port)) || /Address already in use|EADDRINUSE/.test(String(err))) {
      throw new PortTakenError(`port ${ports.join(', ')} was taken by another process first: ${String(err)}`)
    }
    throw err
  }
  const own = child.pid === undefined ? [] : listeningPorts([child.pid])
  const lost = ports.filter((port) => !own.includes(port))
  if (lost.length > 0) {
    await kill(child)
    const taken = lost.filter((port) => hasListener(port))
    if (taken.length > 0) throw new PortTakenError(`pid ${child.pid} said it was ready, but another process holds port ${taken.join(', ')}`)
    throw new Error(`pid ${child.pid} said it was ready, but nothing listens on port ${lost.join(', ')}`)
  }
  return child
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await exited
}
