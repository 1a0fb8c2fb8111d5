/**
 * The built CLI (dist/src/cli.js) in its own process, as an operator runs it, with its JSON
 * log lines parsed as they come. `npm test` builds first; run `npx tsc -p tsconfig.json`
 * before running a test that uses this alone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { logLines, type LogLine } from './log-lines.js'

const ROOT = join(import.meta.dirname, '..', '..')
export const CLI = join(ROOT, 'dist', 'src', 'cli.js')

export interface GatewayProcess {
  child: ChildProcess
  /** Resolves when the process has exited and its output has been read. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stderr: () => string
  /** Every log line read so far, in order. */
  logs: LogLine[]
  /** Resolves with the first log line matching `predicate`; rejects if the process exits first. */
  waitForLog: (predicate: (line: LogLine) => boolean) => Promise<LogLine>
  /** The port from the 'session-gateway listening' line. */
  port: () => Promise<number>
}

/** Starts the CLI with exactly `env` (plus PATH) and `nodeArgs` before it; killed at teardown if still running. */
export function startGatewayProcess (t: { teardown: (fn: () => void) => void }, env: Record<string, string>, nodeArgs: string[] = []): GatewayProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" (npm test does) first`)
  const child = spawn(process.execPath, [...nodeArgs, CLI], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const log = logLines()
  let pending = ''
  let err = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8')
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) if (line.startsWith('{')) log.add(JSON.parse(line) as LogLine)
  })
  child.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const waitForLog = async (predicate: (line: LogLine) => boolean): Promise<LogLine> => await Promise.race([
    log.waitFor(predicate),
    exited.then(({ code, signal }) => { throw new Error(`the gateway exited (${code ?? signal}) before the log line; stderr: ${err}`) })
  ])
  return {
    child,
    exited,
    stderr: () => err,
    logs: log.lines,
    waitForLog,
    port: async () => Number(new URL(String((await waitForLog((l) => l.msg === 'session-gateway listening')).address)).port)
  }
}

/** Resolves with the error code a new TCP connection to `port` gets, or 'connected'. */
export async function tryConnect (port: number): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.on('connect', () => { socket.destroy(); resolve('connected') })
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

/**
 * An idle keep-alive connection: it has made one request and waits. Node closes idle
 * connections in the same call that closes the listening socket, so its 'close' marks the
 * moment the gateway stopped accepting.
 */
export async function idleKeepAliveConnection (port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let seen = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('latin1')
      if (!seen.includes('{"status":"ok"}')) return
      socket.off('data', onData)
      socket.resume() // keep reading, so the server's FIN is seen as 'close'
      resolve()
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`closed before the response: ${JSON.stringify(seen)}`)))
    socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n')
  })
  return socket
}
