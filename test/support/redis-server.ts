/**
 * A real, throwaway redis-server for tests: on a free loopback port it holds itself
 * (./own-port.ts), no persistence, killed and restarted on the same port at will. Tests that
 * start one declare it with `needs('redis-server')` (./needs.ts), which skips them on a machine
 * without Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { tmpdir } from 'node:os'
import { has } from './needs.js'
import { startOnOwnPort, startOwning, type OwnPortOptions } from './own-port.js'

export interface RedisServerOptions {
  /** Serve TLS only (`--port 0 --tls-port PORT`) with these PEM files; clients need not present certificates. */
  tls?: { certFile: string, keyFile: string, caFile: string }
  /** More `redis-server` arguments, e.g. `['--requirepass', 'x']` or cluster mode. */
  args?: string[]
  /** Where the port comes from (see ./own-port.ts); a test of the port's retry hands out a taken one. */
  pickPort?: OwnPortOptions['pickPort']
}

export interface RunningRedis {
  port: number
  /** `redis://127.0.0.1:PORT`, or `rediss://…` with TLS */
  url: string
  /** SIGKILLs the server (no goodbye to clients) and resolves once it has exited. */
  kill: () => Promise<void>
  /** SIGSTOPs the server: connections stay open, nothing is answered (a hung Redis). */
  pause: () => void
  /** SIGCONTs a paused server. */
  resume: () => void
  /** Starts a fresh, empty server on the same port; resolves once it accepts connections (`PortTakenError` if another process took the port meanwhile). */
  restart: () => Promise<void>
  /** Stops the server if it runs; safe to call twice. */
  close: () => Promise<void>
}

/** Throws with an actionable message when `redis-server` cannot be run (a test without `needs('redis-server')`). */
export function requireRedisServer (): void {
  if (!has('redis-server')) {
    throw new Error("redis-server is not on PATH: declare the test with needs('redis-server') (test/support/needs.ts), " +
      'or install it: apt-get install -y redis-server')
  }
}

export async function startRedis (options: RedisServerOptions = {}): Promise<RunningRedis> {
  requireRedisServer()
  const argsFor = (port: number): string[] => [...listenArgs(port, options.tls), ...(options.args ?? [])]
  const portsFor = (port: number): number[] => options.args?.includes('--cluster-enabled') === true ? [port, port + CLUSTER_BUS_OFFSET] : [port]
  const started = await startOnOwnPort(async (port) => await spawnRedis(argsFor(port)), { ports: portsFor, pickPort: options.pickPort })
  const port = started.port
  let child: ChildProcess | undefined = started.child
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill(signal)
    await exited
  }
  return {
    port,
    url: `${options.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    kill: async () => { await stop('SIGKILL') },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    restart: async () => {
      await stop('SIGKILL')
      child = await startOwning(portsFor(port), async () => await spawnRedis(argsFor(port)))
    },
    close: async () => { await stop('SIGKILL') }
  }
}

/** A Cluster node also listens on its port + 10000, for the cluster bus (redis-server's default). */
const CLUSTER_BUS_OFFSET = 10_000

function listenArgs (port: number, tls: RedisServerOptions['tls']): string[] {
  if (tls === undefined) return ['--port', String(port)]
  return ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile,
    '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no']
}

/** Spawns a throwaway redis-server (loopback, no persistence) and resolves once it accepts connections. */
async function spawnRedis (args: string[]): Promise<ChildProcess> {
  return await spawnUntil('redis-server', [
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', tmpdir(),
    ...args
  ], 'Ready to accept connections')
}

/** Spawns `command` and resolves when its output shows `marker`; rejects if it exits first. */
export async function spawnUntil (command: string, args: string[], marker: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  return await new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8')
      if (output.includes(marker)) {
        cleanup()
        child.stdout?.resume() // keep draining so a chatty server never blocks on a full pipe
        resolve(child)
      }
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup()
      reject(new Error(`${command} ${args.join(' ')} exited before it was ready (code ${code}, signal ${signal}):\n${output}`))
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    const cleanup = (): void => {
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      child.off('error', onError)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
    child.once('error', onError)
  })
}
