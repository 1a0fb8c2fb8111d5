/**
 * The `session-gateway` command as an operator runs it: the built dist/src/cli.js in its own
 * process, configured by flags, a YAML file and the environment, stopped by signals.
 * `npm test` builds first; run `npx tsc -p tsconfig.json` before running this file alone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { logLines } from '../support/log-lines.js'
import { replyJson, replySse, responseStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { idleKeepAliveConnection, tryConnect } from '../support/gateway-process.js'

const ROOT = join(import.meta.dirname, '..', '..')
const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const EXAMPLE = join(ROOT, 'config.example.yaml')

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" (npm test does) first`)

// Each test runs processes of its own on ports of its own; most of their time is a process
// starting or stopping, so a few run at once.
t.jobs = 4

interface CliProcess {
  child: ChildProcess
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stdout: () => string
  stderr: () => string
  /** Resolves with the first JSON log line on stdout matching `predicate`. */
  waitForLog: (predicate: (line: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
}

/** Runs the CLI with exactly `env` (plus PATH): nothing leaks in from the test's own environment. */
function runCli (t: Test, args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  let pending = ''
  const log = logLines()
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8')
    pending += chunk.toString('utf8')
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      if (line.startsWith('{')) log.add(JSON.parse(line) as Record<string, unknown>)
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    // 'close' rather than 'exit': it comes after stdout and stderr have been read to their end.
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitForLog: async (predicate) => {
      const found = log.lines.find(predicate)
      if (found !== undefined) return found
      return await Promise.race([
        log.waitFor(predicate),
        // A process that dies first would otherwise leave the test waiting for its timeout.
        exited.then(({ code, signal }) => { throw new Error(`exited (${code ?? signal}) before the log line; stderr: ${err}`) })
      ])
    }
  }
}

/** Waits for the 'session-gateway listening' line and returns the bound address's port. */
async function listeningPort (cli: CliProcess): Promise<number> {
  const line = await cli.waitForLog((l) => l.msg === 'session-gateway listening')
  return Number(new URL(String(line.address)).port)
}

/** Loopback, a random port, and the given upstream, on top of whatever else the test sets. */
function gatewayEnv (upstream: MockUpstream, env: Record<string, string> = {}): Record<string, string> {
  return { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, ...env }
}

/** A promise and the function that settles it: the test's hand on the mock upstream. */
function gate (): { opened: Promise<void>, open: () => void } {
  let open = (): void => {}
  const opened = new Promise<void>((resolve) => { open = resolve })
  return { opened, open }
}

/** Reads from an undici body until at least `bytes` bytes have arrived. */
async function readAtLeast (body: AsyncIterator<Buffer>, into: Buffer[], bytes: number): Promise<void> {
  while (Buffer.concat(into).length < bytes) {
    const next = await body.next()
    if (next.done === true) throw new Error('the stream ended early')
    into.push(next.value)
  }
}



t.test('a bad value exits 2 at once, naming the variable, without a stack trace', async (t) => {
  const startedAt = performance.now()
  const cli = runCli(t, [], { PORT: 'abc' })
  const { code } = await cli.exited
  t.equal(code, 2, 'a configuration error: 2')
  t.ok(performance.now() - startedAt < 10_000, 'it exits instead of waiting on anything')
  t.match(cli.stderr(), /^session-gateway: config PORT: expected a whole number, got "abc"\n$/)
  t.notMatch(cli.stderr(), /\n\s+at /, 'no stack trace')
  t.equal(cli.stdout(), '', 'nothing was started, so nothing was logged')
})

// Regression: with the default request timeout (300000) this in-range value made Node refuse to
// create the server, "cannot start: ERR_OUT_OF_RANGE … headersTimeout", in Node's words, not ours.
t.test('a headers timeout above the request timeout exits 2 naming both keys; raised together it starts', async (t) => {
  const refused = runCli(t, [], { HOST: '127.0.0.1', PORT: '0', SERVER_HEADERS_TIMEOUT_MS: '600000' })
  t.equal((await refused.exited).code, 2)
  t.match(refused.stderr(), /^session-gateway: config SERVER_HEADERS_TIMEOUT_MS: server\.headers_timeout_ms \(SERVER_HEADERS_TIMEOUT_MS\) 600000 is longer than server\.request_timeout_ms \(SERVER_REQUEST_TIMEOUT_MS\) 300000/)
  t.notMatch(refused.stderr(), /ERR_OUT_OF_RANGE|headersTimeout/, "not Node's option names")

  const started = runCli(t, [], { HOST: '127.0.0.1', PORT: '0', SERVER_HEADERS_TIMEOUT_MS: '600000', SERVER_REQUEST_TIMEOUT_MS: '600000' })
  await listeningPort(started)
  started.child.kill('SIGTERM')
  t.equal((await started.exited).code, 0)
})

t.test('--config with a missing file exits 2, naming the file, without a stack trace', async (t) => {
  const cli = runCli(t, ['--config', 'missing.yaml'])
  const { code } = await cli.exited
  t.equal(code, 2, 'a configuration error: 2')
  t.match(cli.stderr(), /^session-gateway: config --config: cannot read missing\.yaml: ENOENT\n$/)
  t.notMatch(cli.stderr(), /\n\s+at /, 'no stack trace')
})

t.test('a typo in the YAML file exits 2, naming the key', async (t) => {
  const dir = t.testdir({ 'typo.yaml': 'server:\n  prot: 9000\n' })
  const cli = runCli(t, ['--config', join(dir, 'typo.yaml')])
  const { code } = await cli.exited
  t.equal(code, 2, 'a configuration error: 2')
  t.match(cli.stderr(), /server\.prot: unknown setting/)
})

t.test('an unknown YAML key left empty exits 2, naming the key', async (t) => {
  const dir = t.testdir({ 'empty.yaml': 'server:\n  host: 127.0.0.1\n  port: 0\nredis_url:\n' })
  const cli = runCli(t, ['--config', join(dir, 'empty.yaml')])
  t.equal((await cli.exited).code, 2)
  t.match(cli.stderr(), /^session-gateway: config redis_url: unknown setting in /)
})

// Regression: accepted at start, then every request failed with 502 (undici UND_ERR_NOT_SUPPORTED).
t.test('an upstream header the gateway must set itself (expect) exits 2, naming the key and the header', async (t) => {
  const cli = runCli(t, [], { HOST: '127.0.0.1', PORT: '0', UPSTREAM_HEADERS: '{"x-team":"a","expect":"100-continue"}' })
  t.equal((await cli.exited).code, 2)
  t.match(cli.stderr(), /^session-gateway: config UPSTREAM_HEADERS\.expect: expect cannot be configured/)
})

/** A port on 127.0.0.1 that something else holds until the test ends. */
async function portInUse (t: Test): Promise<number> {
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => await new Promise<void>((resolve) => holder.close(() => resolve())))
  return (holder.address() as AddressInfo).port
}

// Regression: these said "cannot start: EADDRINUSE … 0.0.0.0:21123" or "ENOTFOUND …", naming no
// setting, and exited 2, which systemd's RestartPreventExitStatus=2 never retries.
t.test('a port in use exits 1 (worth retrying), naming PORT or METRICS_PORT', async (t) => {
  const held = await portInUse(t)
  const main = runCli(t, [], { HOST: '127.0.0.1', PORT: String(held) })
  t.equal((await main.exited).code, 1)
  t.equal(main.stderr(), `session-gateway: cannot listen on 127.0.0.1:${held}, server.port (PORT): EADDRINUSE, the port is in use\n`)

  const metrics = runCli(t, [], { HOST: '127.0.0.1', PORT: '0', METRICS_PORT: String(held) })
  t.equal((await metrics.exited).code, 1)
  t.equal(metrics.stderr(), `session-gateway: cannot listen for /metrics on 127.0.0.1:${held}, metrics.port (METRICS_PORT): EADDRINUSE, the port is in use\n`)
})

t.test('a HOST that does not resolve exits 1, naming HOST', async (t) => {
  const cli = runCli(t, [], { HOST: 'no-such-host.invalid', PORT: '0' })
  t.equal((await cli.exited).code, 1)
  t.match(cli.stderr(), /^session-gateway: cannot listen on no-such-host\.invalid:0, server\.host \(HOST\): (ENOTFOUND|EAI_AGAIN|EAI_FAIL), /)
})

// Regression: it exited 1 ("cannot listen on [0.0.0.0:8080]:0 … ENOTFOUND"), which a supervisor
// retries for ever, as if the name might resolve later.
t.test('a HOST with a port in it is a configuration error: exit 2, naming HOST', async (t) => {
  const cli = runCli(t, [], { HOST: '0.0.0.0:8080', PORT: '0' })
  t.equal((await cli.exited).code, 2)
  t.match(cli.stderr(), /^session-gateway: config HOST: expected an IP address \(IPv6 without \[brackets\]\) or a host name, got "0\.0\.0\.0:8080"; the port goes in server\.port \(PORT\)\n$/)
})

t.test('METRICS_PORT equal to PORT is a configuration error: exit 2, naming both', async (t) => {
  const cli = runCli(t, [], { HOST: '127.0.0.1', PORT: '21123', METRICS_PORT: '21123' })
  t.equal((await cli.exited).code, 2)
  t.match(cli.stderr(), /^session-gateway: config METRICS_PORT: metrics\.port \(METRICS_PORT\) 21123 is server\.port \(PORT\) too/)
})

t.test('--help prints usage and exits 0', async (t) => {
  const cli = runCli(t, ['--help'])
  const { code } = await cli.exited
  t.equal(code, 0)
  t.match(cli.stdout(), /^Usage: session-gateway \[--config FILE\]/)
  t.equal(cli.stderr(), '')
})

t.test('an unknown flag exits 2 with the usage', async (t) => {
  const cli = runCli(t, ['--port', '80'])
  const { code } = await cli.exited
  t.equal(code, 2, 'a configuration error: 2')
  t.match(cli.stderr(), /--port/)
  t.match(cli.stderr(), /Usage: session-gateway/)
})

t.test('with --config config.example.yaml it starts and proxies, and SIGTERM stops it with 0', async (t) => {
  const upstream = await startMockUpstream(replyJson({ id: 'resp_cli', object: 'response' }))
  const agent = new Agent()
  t.teardown(async () => { await agent.close(); await upstream.close() })

  const cli = runCli(t, ['--config', EXAMPLE], gatewayEnv(upstream))
  const port = await listeningPort(cli)
  const listening = await cli.waitForLog((l) => l.msg === 'session-gateway listening')
  t.same(listening.upstreams, { default: upstream.url }, 'the environment overrides the file')

  const res = await request(`http://127.0.0.1:${port}/v1/responses`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"model":"gpt-test","input":"hi"}'
  })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { id: 'resp_cli', object: 'response' })
  const seen = upstream.requests[0]
  t.equal(seen?.url, '/v1/responses')
  t.equal(seen?.headers.originator, 'codex_cli_rs', 'the default originator, from the file')
  t.equal(seen?.body.toString(), '{"model":"gpt-test","input":"hi"}')

  cli.child.kill('SIGTERM')
  t.same(await cli.exited, { code: 0, signal: null })
})

t.test('regression: METRICS_PORT=0 logs the address the metrics listener took', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(async () => { await upstream.close() })
  const cli = runCli(t, [], gatewayEnv(upstream, { METRICS_PORT: '0' }))
  const port = await listeningPort(cli)
  const line = await cli.waitForLog((l) => l.msg === 'metrics listening')
  const address = new URL(String(line.address))
  t.equal(address.hostname, '127.0.0.1', 'on the gateway\'s host')
  t.not(address.port, String(port), 'on a port of its own')
  const res = await request(`${address.origin}/metrics`)
  t.equal(res.statusCode, 200, 'the logged address serves /metrics')
  await res.body.dump()
  cli.child.kill('SIGTERM')
  t.equal((await cli.exited).code, 0)
})

// Regression: the line named config.upstream.url, https://api.openai.com/v1 (its default), while
// the gateway routed over UPSTREAMS.
t.test('the listening line names every upstream routed to, by name, without the url\'s query', async (t) => {
  const upstreams = [
    { name: 'a', url: 'http://127.0.0.1:9/openai/v1/?api-version=preview&sig=not-for-logs' },
    { name: 'b', url: 'http://127.0.0.1:10' }
  ]
  const cli = runCli(t, [], { HOST: '127.0.0.1', PORT: '0', UPSTREAMS: JSON.stringify(upstreams) })
  const listening = await cli.waitForLog((l) => l.msg === 'session-gateway listening')
  t.same(listening.upstreams, { a: 'http://127.0.0.1:9/openai/v1', b: 'http://127.0.0.1:10' })
  t.notMatch(cli.stdout(), /api\.openai\.com|not-for-logs|api-version/)
  cli.child.kill('SIGTERM')
  t.equal((await cli.exited).code, 0)
})

t.test('CONFIG_FILE works like --config; --config wins over it', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(async () => { await upstream.close() })
  const dir = t.testdir({
    'gateway.yaml': `server:\n  host: 127.0.0.1\n  port: 0\nupstream:\n  url: ${upstream.url}\nlog:\n  level: debug\n`
  })
  const file = join(dir, 'gateway.yaml')

  const viaEnv = runCli(t, [], { CONFIG_FILE: file })
  await listeningPort(viaEnv)
  t.same((await viaEnv.waitForLog((l) => l.msg === 'session-gateway listening')).upstreams, { default: upstream.url })
  viaEnv.child.kill('SIGTERM')
  t.equal((await viaEnv.exited).code, 0)

  const flagWins = runCli(t, ['--config', file], { CONFIG_FILE: join(dir, 'missing.yaml') })
  await listeningPort(flagWins)
  flagWins.child.kill('SIGTERM')
  t.equal((await flagWins.exited).code, 0)

  const missing = runCli(t, [], { CONFIG_FILE: join(dir, 'missing.yaml') })
  t.equal((await missing.exited).code, 2)
  t.match(missing.stderr(), /cannot read .*missing\.yaml/)
})

t.test('an empty CONFIG_FILE counts as unset, like every other variable', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(async () => { await upstream.close() })
  const cli = runCli(t, [], gatewayEnv(upstream, { CONFIG_FILE: '' }))
  await listeningPort(cli)
  cli.child.kill('SIGTERM')
  t.equal((await cli.exited).code, 0)
})

t.test('SIGTERM: no new connections, the in-flight stream finishes byte-complete, exit 0', async (t) => {
  const events = responseStream('resp_drain', 'draining').split(/(?<=\n\n)/)
  const upstream = await startMockUpstream()
  const agent = new Agent()
  t.teardown(async () => { await agent.close(); await upstream.close() })
  // The upstream writes two events, then holds the rest until the test opens the gate.
  const rest = gate()
  upstream.handle(replySse(events, async (i) => { if (i === 1) await rest.opened }))

  const cli = runCli(t, [], gatewayEnv(upstream))
  const port = await listeningPort(cli)
  const idle = await idleKeepAliveConnection(port)
  const idleClosed = once(idle, 'close')

  const res = await request(`http://127.0.0.1:${port}/v1/responses`, { dispatcher: agent, method: 'POST', body: '{"stream":true}' })
  t.equal(res.statusCode, 200)
  const received: Buffer[] = []
  const body = res.body[Symbol.asyncIterator]()
  await readAtLeast(body, received, Buffer.byteLength(events[0]! + events[1]!))

  const signalledAt = performance.now()
  cli.child.kill('SIGTERM')
  await cli.waitForLog((l) => l.msg === 'shutting down: draining in-flight requests')
  await idleClosed

  t.equal(await tryConnect(port), 'ECONNREFUSED', 'a new connection is refused once shutdown has begun')
  t.equal(cli.child.exitCode, null, 'still running while the stream is in flight')

  rest.open()
  await readAtLeast(body, received, Buffer.byteLength(events.join('')))
  const end = await body.next()
  t.equal(end.done, true, 'the stream ended cleanly')
  t.equal(Buffer.concat(received).toString('utf8'), events.join(''), 'every byte arrived')

  t.same(await cli.exited, { code: 0, signal: null })
  const grace = 30_000
  // Regression: Node kept the drained stream's keep-alive connection open, so the process
  // only exited when the grace timer fired (30 s later).
  t.ok(performance.now() - signalledAt < grace, 'it exits once drained, not when the grace period runs out')
  t.match(await cli.waitForLog((l) => l.msg === 'shut down'), { cut: 0 })
})

t.test('SIGTERM with a stream that never ends: cut after SHUTDOWN_GRACE_MS, exit 0, client sees it torn', async (t) => {
  const upstream = await startMockUpstream()
  const agent = new Agent()
  t.teardown(async () => { await agent.close(); await upstream.close() })
  const events = responseStream('resp_stuck', 'never finishes').split(/(?<=\n\n)/)
  upstream.handle(replySse(events, async () => await new Promise<void>(() => {})))

  const graceMs = 300
  const cli = runCli(t, [], gatewayEnv(upstream, { SHUTDOWN_GRACE_MS: String(graceMs) }))
  const port = await listeningPort(cli)
  const upstreamRequest = upstream.nextRequest()
  const res = await request(`http://127.0.0.1:${port}/v1/responses`, { dispatcher: agent, method: 'POST', body: '{"stream":true}' })
  const body = res.body[Symbol.asyncIterator]()
  await readAtLeast(body, [], Buffer.byteLength(events[0]!))

  const signalledAt = performance.now()
  cli.child.kill('SIGTERM')
  const torn = (async () => {
    for (;;) if ((await body.next()).done === true) return 'ended cleanly'
  })().catch((err: Error) => err)

  t.same(await cli.exited, { code: 0, signal: null })
  const tookMs = performance.now() - signalledAt
  t.ok(tookMs >= graceMs - 20, `waited out the grace period (${Math.round(tookMs)} ms)`)
  t.ok(tookMs < graceMs + 5_000, `and exited soon after it (${Math.round(tookMs)} ms)`)

  const outcome = await torn
  t.type(outcome, Error, 'the client sees its stream torn, not a clean end')
  t.match(await cli.waitForLog((l) => l.msg === 'shut down'), { cut: 1 })
  // Regression: logged as the upstream's failure (UND_ERR_DESTROYED), the agent being destroyed
  // before the client's connection reported its close.
  t.match(await cli.waitForLog((l) => l.msg === 'request'), { status: 200, ended_by: 'gateway', error: 'shutdown' }, 'logged as stopped by the gateway')
  const seen = await upstreamRequest
  await seen.closed
  t.ok(seen.abortedByPeer(), 'the upstream request was cancelled with it')
})

t.test('regression: a collector that accepts connections and never answers does not hold the exit after shutdown, and the exit code stays 0', async (t) => {
  // Accepts, reads, never replies: the export hangs until the exporter's timeout (set far past the test).
  const held = new Set<import('node:net').Socket>()
  const collector = createServer((socket) => { held.add(socket); socket.resume() })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of held) socket.destroy()
    await new Promise((resolve) => collector.close(resolve))
  })
  const upstream = await startMockUpstream(replyJson({ ok: true }))
  t.teardown(upstream.close)
  const cli = runCli(t, [], gatewayEnv(upstream, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_TIMEOUT: '600000',
    OTEL_BSP_EXPORT_TIMEOUT: '600000',
    SHUTDOWN_GRACE_MS: '1000'
  }))
  const port = await listeningPort(cli)
  const res = await request(`http://127.0.0.1:${port}/v1/models`)
  await res.body.dump()
  const signalledAt = performance.now()
  cli.child.kill('SIGTERM')
  await cli.waitForLog((l) => l.msg === 'shut down')
  t.same(await cli.exited, { code: 0, signal: null }, 'it exits, with 0')
  // Before: the hung export (and its timers) kept the process alive for the exporter's timeout.
  t.ok(performance.now() - signalledAt < 60_000, 'well before the exporter would have given up')
})
