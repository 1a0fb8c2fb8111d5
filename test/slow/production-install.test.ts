/**
 * The Docker image's runtime stage, without Docker: package files + the built dist/src (+ the
 * example config) in an empty directory, `npm ci --omit=dev`, then `node dist/src/cli.js` as
 * PID 1 would run it. Proves the production install has everything the gateway needs and
 * nothing it does not, and that SIGTERM drains a stream in flight before exiting 0.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { randomChunks, replySse, responseStream, startMockUpstream } from '../support/mock-upstream.js'

// npm ci may fetch from the registry when the local cache is cold.
t.setTimeout(300_000)

const root = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>, dependencies: Record<string, string> }
const entry = pkg.bin['session-gateway'] as string // dist/src/cli.js: the image's CMD

interface LogLine { msg?: string, [key: string]: unknown }

/** Runs a command to completion; rejects with its output when it exits non-zero. */
async function run (command: string, args: string[], options: { cwd: string, env: NodeJS.ProcessEnv }): Promise<void> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const [code] = await once(child, 'close') as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`)
}

/** The environment npm ci gets: this one, less what tap and an outer `npm test` put in it. */
function npmEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'NODE_OPTIONS' || name.startsWith('TAP') || name.startsWith('_TAPJS_')) continue
    if (name === 'npm_config_local_prefix' || name.startsWith('npm_lifecycle_') || name.startsWith('npm_package_')) continue
    env[name] = value
  }
  return env
}

/** The gateway's JSON log lines from stdout, with a way to wait for one. */
function followLog (child: ChildProcess): { lines: LogLine[], waitFor: (predicate: (line: LogLine) => boolean) => Promise<LogLine> } {
  const lines: LogLine[] = []
  const waiters: Array<{ predicate: (line: LogLine) => boolean, resolve: (line: LogLine) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine
    try {
      line = JSON.parse(text) as LogLine
    } catch {
      line = { msg: text }
    }
    lines.push(line)
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.predicate(line)) waiters.splice(i, 1)[0]!.resolve(line)
    }
  })
  return {
    lines,
    waitFor: async (predicate) => lines.find(predicate) ?? await new Promise((resolve) => waiters.push({ predicate, resolve }))
  }
}

t.test('the production install runs the gateway without dev dependencies and drains on SIGTERM', async (t) => {
  if (!existsSync(join(root, entry))) {
    // `npm test` builds first; a lone `npx tap` run of this file may not have.
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: root, env: npmEnv() })
  }

  const dir = mkdtempSync(join(tmpdir(), 'session-gateway-prod-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // Exactly what the Dockerfile's runtime stage copies.
  for (const file of ['package.json', 'package-lock.json', 'config.example.yaml']) {
    if (existsSync(join(root, file))) cpSync(join(root, file), join(dir, file))
  }
  cpSync(join(root, 'dist/src'), join(dir, 'dist/src'), { recursive: true })
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, env: npmEnv() })

  t.test('only production dependencies are installed', async (t) => {
    for (const devOnly of ['typescript', 'tap', '@openai/codex']) {
      t.notOk(existsSync(join(dir, 'node_modules', devOnly)), `${devOnly} is not installed`)
    }
    for (const dependency of Object.keys(pkg.dependencies)) {
      t.ok(existsSync(join(dir, 'node_modules', dependency, 'package.json')), `${dependency} is installed`)
    }
    t.notOk(existsSync(join(dir, 'src')), 'no TypeScript sources')
  })

  const upstream = await startMockUpstream()
  t.teardown(async () => await upstream.close())
  // A clean environment: no tap loaders in NODE_OPTIONS, nothing but the image's settings.
  const gateway = spawn(process.execPath, [entry], {
    cwd: dir,
    env: { PATH: process.env.PATH, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  // 'close', not 'exit': by then its stdout has been read to the end.
  const exited = once(gateway, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  let stderr = ''
  gateway.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  t.teardown(() => { if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGKILL') })
  const log = followLog(gateway)
  let started = false
  const listening = await Promise.race([
    log.waitFor((line) => line.msg === 'session-gateway listening').then((line) => { started = true; return line }),
    exited.then(async ([code]) => {
      if (!started) throw new Error(`gateway exited ${code} before listening:\n${stderr}`)
      return await new Promise<never>(() => {})
    })
  ])
  const address = String(listening.address)
  t.match(address, /^http:\/\/127\.0\.0\.1:\d+$/, 'the listening line carries the bound address')

  const client = new Agent()
  t.teardown(async () => await client.close())

  t.test('a streamed response arrives byte for byte, with the session headers upstream', async (t) => {
    const stream = Buffer.from(responseStream('resp_prod', 'from the production install — ✓'))
    upstream.handle(replySse(randomChunks(stream, 7)))
    const received = upstream.nextRequest()
    const res = await request(`${address}/v1/responses`, {
      dispatcher: client,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', 'session-id': 'prod-session-1' },
      body: '{"model":"gpt-test","stream":true}'
    })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.statusCode, 200)
    t.ok(body.equals(stream), 'bytes identical to what the upstream sent')
    const upstreamRequest = await received
    t.equal(upstreamRequest.url, '/v1/responses')
    t.equal(upstreamRequest.headers['session-id'], 'prod-session-1')
    t.equal(upstreamRequest.headers.session_id, 'prod-session-1')
    t.equal(upstreamRequest.headers.authorization, 'Bearer sk-test')
  })

  t.test("the image's HEALTHCHECK (dist/src/health-check.js) passes from the production install", async (t) => {
    const check = spawn(process.execPath, ['dist/src/health-check.js', '/healthz'], {
      cwd: dir,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: new URL(address).port },
      stdio: 'ignore'
    })
    const [code] = await once(check, 'close') as [number | null]
    t.equal(code, 0)
  })

  t.test('SIGTERM lets the stream in flight finish, then the process exits 0', async (t) => {
    const events = responseStream('resp_drain', 'still streaming while shutting down').split(/(?<=\n\n)/)
    const head = events.slice(0, 3).join('')
    const tail = events.slice(3).join('')
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => { release = resolve })
    // The upstream holds the rest of the stream back until the gateway has begun shutting down.
    upstream.handle(replySse([head, tail], async () => await released))

    const res = await request(`${address}/v1/responses`, {
      dispatcher: client,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'session-id': 'prod-session-drain' },
      body: '{"model":"gpt-test","stream":true}'
    })
    t.equal(res.statusCode, 200)
    const chunks: Buffer[] = []
    const reader = res.body[Symbol.asyncIterator]()
    const first = await reader.next()
    chunks.push(first.value as Buffer)

    t.ok(gateway.kill('SIGTERM'), 'SIGTERM sent mid-stream')
    const stopping = await log.waitFor((line) => line.msg === 'shutting down: draining in-flight requests')
    t.equal(stopping.signal, 'SIGTERM')
    release()

    for (let next = await reader.next(); next.done !== true; next = await reader.next()) chunks.push(next.value as Buffer)
    t.equal(Buffer.concat(chunks).toString('utf8'), head + tail, 'the stream is complete, byte for byte')

    const [code, signal] = await exited
    t.equal(code, 0, 'exit code 0')
    t.equal(signal, null, 'not killed by the signal')
    t.equal(stderr, '', 'nothing on stderr')
    const exchange = log.lines.find((line) => line.msg === 'request' && line.session === 'prod-session-drain')
    t.equal(exchange?.ended_by, 'complete', 'the request log records a complete stream')
    t.equal(log.lines.find((line) => line.msg === 'shut down')?.cut, 0, 'no request was cut')
  })
})
