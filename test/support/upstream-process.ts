/**
 * Mock upstreams as child processes (./upstream-process-main.mjs): each on its own loopback
 * port (port 0's, which the child reports: none is picked in advance for another process to
 * take first), killed with SIGKILL and restarted on the same port at will, reporting what it
 * received.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import { rendezvousOrder } from '../../src/upstream/rendezvous.js'
import { envWithoutTapHooks } from './child-env.js'

export interface SeenRequest {
  upstream: string
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

export type UpstreamMode = { status: 200 } | { status: number, retryAfter?: number }

export interface UpstreamProcess {
  name: string
  port: number
  /** `http://127.0.0.1:PORT/v1` */
  url: string
  /** Everything received since the first start, restarts included. */
  requests: SeenRequest[]
  /** Resolves once `count` requests matching `predicate` have been received (counting those already in). */
  received: (predicate: (request: SeenRequest) => boolean, count?: number) => Promise<void>
  setMode: (mode: UpstreamMode) => Promise<void>
  /** SIGKILL: no goodbye to open connections. Resolves once the process has exited. */
  kill: () => Promise<void>
  /** Starts it again on the same port (in mode `ok`); resolves once it listens, rejects if another process took the port meanwhile. */
  restart: () => Promise<void>
}

const MAIN = join(import.meta.dirname, 'upstream-process-main.mjs')

export async function startUpstreamProcess (name: string): Promise<UpstreamProcess> {
  const requests: SeenRequest[] = []
  let child: ChildProcess | undefined
  let seq = 0
  const acks = new Map<number, () => void>()
  const watchers = new Set<() => void>()
  /** Starts the child on `port` (0: any); resolves to the port it listens on. */
  const spawn = async (port: number): Promise<number> => {
    // Plain JavaScript: none of tap's loaders (fork would pass on its own execArgv) nor hooks.
    const started = fork(MAIN, [String(port), name], { execArgv: [], env: envWithoutTapHooks(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child = started
    return await new Promise<number>((resolve, reject) => {
      started.once('exit', (code) => reject(new Error(`upstream ${name} exited (${code ?? 'signal'}) before listening on port ${port}`)))
      started.on('message', (message: { ready?: number, request?: SeenRequest, ack?: number }) => {
        if (message.ready !== undefined) resolve(message.ready)
        if (message.request !== undefined) {
          requests.push(message.request)
          for (const watcher of watchers) watcher()
        }
        if (message.ack !== undefined) acks.get(message.ack)?.()
      })
    })
  }
  const kill = async (): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill('SIGKILL')
    await exited
  }
  const port = await spawn(0)
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    received: async (predicate, count = 1) => {
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (requests.filter(predicate).length < count) return
          watchers.delete(check)
          resolve()
        }
        watchers.add(check)
        check()
      })
    },
    setMode: async (mode) => {
      const id = ++seq
      await new Promise<void>((resolve) => { acks.set(id, resolve); child?.send({ seq: id, mode }) })
    },
    kill,
    restart: async () => { await kill(); await spawn(port) }
  }
}

/** Several upstream processes, all killed at teardown. */
export async function startUpstreamProcesses (t: { teardown: (fn: () => Promise<void>) => void }, names: string[]): Promise<UpstreamProcess[]> {
  const started = await Promise.all(names.map(async (name) => await startUpstreamProcess(name)))
  t.teardown(async () => { await Promise.all(started.map(async (upstream) => await upstream.kill())) })
  return started
}

/** `count` session ids (`prefix-N`) whose rendezvous order over `names` (equal weights) starts with `first`. */
export function sessionsHomedOn (first: string, names: string[], count: number, prefix: string): string[] {
  const upstreams = names.map((name) => ({ name, weight: 1 }))
  const found: string[] = []
  for (let i = 0; found.length < count; i++) {
    if (rendezvousOrder(`${prefix}-${i}`, upstreams)[0]!.name === first) found.push(`${prefix}-${i}`)
  }
  return found
}
