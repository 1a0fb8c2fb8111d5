/**
 * The real codex CLI (its native binary, launched by node_modules/.bin/codex) pointed at the
 * gateway through a throwaway CODEX_HOME: one `codex exec` turn goes through end to end, keeps
 * codex's own session id and originator, and a truncated upstream stream is not made whole.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { replySse, responseStream, startMockUpstream, type MockUpstream } from './support/mock-upstream.js'
import { startGateway, type RunningGateway } from './support/gateway.js'

const CODEX = join(import.meta.dirname, '..', 'node_modules', '.bin', 'codex')
const API_KEY = 'sk-test-codex'
// A cold start of the native binary can be slow on a loaded CI machine; a turn takes < 1 s.
const TIMEOUT = 60_000
// A codex still running this close to the tap timeout is stopped, so the test fails with what it printed.
const WATCHDOG = TIMEOUT - 10_000

interface CodexRun {
  code: number | null
  signal: NodeJS.Signals | null
  /** True when the watchdog had to stop it. */
  hung: boolean
  stdout: string
  stderr: string
}

/** Runs `codex exec` to its exit, with nothing on stdin and only the environment it needs. */
async function runCodex (t: Test, baseURL: string, args: string[]): Promise<CodexRun> {
  const home = await mkdtemp(join(tmpdir(), 'gw-codex-home-'))
  const codexHome = await mkdtemp(join(tmpdir(), 'gw-codex-codexhome-'))
  t.teardown(async () => {
    await rm(home, { recursive: true, force: true })
    await rm(codexHome, { recursive: true, force: true })
  })
  await writeFile(join(codexHome, 'config.toml'), codexConfig(baseURL))

  const child = spawn(CODEX, args, {
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { OPENAI_API_KEY: API_KEY, CODEX_HOME: codexHome, HOME: home, PATH: process.env.PATH ?? '' }
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  // SIGTERM, not SIGKILL: bin/codex.js forwards it to the native binary, which SIGKILL would orphan.
  let hung = false
  const watchdog = setTimeout(() => { hung = true; child.kill('SIGTERM') }, WATCHDOG)
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM') })

  return await new Promise<CodexRun>((resolve, reject) => {
    child.once('error', (err) => {
      reject(new Error(`cannot start the codex CLI at ${CODEX}: ${err.message}. ` +
        'These tests need @openai/codex (devDependency) and its native binary for this platform installed.'))
    })
    // 'close' rather than 'exit': it also waits for stdout/stderr to be read to their end.
    child.once('close', (code, signal) => {
      clearTimeout(watchdog)
      resolve({ code, signal, hung, stdout, stderr })
    })
  })
}

function codexConfig (baseURL: string): string {
  return [
    'model = "gpt-5"',
    'model_provider = "gw"',
    '[analytics]',
    'enabled = false',
    '[features]',
    'plugins = false',
    'shell_snapshot = false',
    '[model_providers.gw]',
    'name = "session-gateway"',
    `base_url = ${JSON.stringify(baseURL)}`,
    'env_key = "OPENAI_API_KEY"',
    'wire_api = "responses"',
    'supports_websockets = false',
    'request_max_retries = 0',
    'stream_max_retries = 0',
    ''
  ].join('\n')
}

/** Diagnostics shown when an assertion about a run fails: what codex said, and how far it got. */
function diagnostics (run: CodexRun, upstream: MockUpstream): Record<string, unknown> {
  return { hung: run.hung, signal: run.signal, upstreamRequests: upstream.requests.length, stdout: run.stdout, stderr: run.stderr }
}

async function setUp (t: Test): Promise<{ upstream: MockUpstream, gateway: RunningGateway }> {
  const upstream = await startMockUpstream()
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  return { upstream, gateway }
}

t.before(async () => {
  // Fail loudly, once, when the binary cannot run here at all (wrong platform, missing optional dependency).
  const child = spawn(CODEX, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start the codex CLI at ${CODEX}: ${err.message}`)))
    child.once('close', resolve)
  })
  if (code !== 0 || !/^codex-cli \d/m.test(output)) {
    throw new Error(`the codex CLI at ${CODEX} cannot run here (\`codex --version\` exited ${String(code)}):\n${output}\n` +
      'These tests need @openai/codex (written against 0.169.0) and its native binary for this platform.')
  }
})

t.test('codex exec completes a turn through the gateway, keeping its own session id and originator', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway } = await setUp(t)
  const text = 'Hi from the mock upstream!'
  upstream.handle(replySse([responseStream('resp_codex_turn', text)]))

  const run = await runCodex(t, gateway.baseURL, ['exec', '--skip-git-repo-check', '--ephemeral', 'say hi'])

  t.equal(run.code, 0, 'codex exited 0', diagnostics(run, upstream))
  t.match(run.stdout, text, 'codex printed the mocked assistant text', diagnostics(run, upstream))

  const posts = upstream.requests.filter((req) => req.method === 'POST' && req.url === '/v1/responses')
  t.equal(posts.length, 1, 'one POST /v1/responses reached the upstream')
  const seen = posts[0]
  if (seen === undefined) return
  const body = JSON.parse(seen.body.toString('utf8')) as { prompt_cache_key?: unknown, stream?: unknown }
  const codexSession = seen.headers['thread-id']
  t.type(codexSession, 'string', 'codex sent its thread-id')
  t.match(codexSession, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7, as codex makes them')
  t.equal(body.prompt_cache_key, codexSession, 'codex keys its prompt cache by the same id')
  t.match(run.stderr, `session id: ${String(codexSession)}`, 'the id is the session id codex reports')
  t.equal(seen.headers['session-id'], codexSession, 'session-id is codex\'s own, not one the gateway made')
  t.equal(seen.headers.session_id, codexSession, 'session_id added, with codex\'s id')
  t.equal(seen.headers.originator, 'codex_exec', 'codex\'s originator is kept, not replaced by the default')
  t.equal(seen.headers.authorization, `Bearer ${API_KEY}`, 'the API key passes through as sent')
  t.equal(body.stream, true, 'codex asked for a stream')
})

t.test('a stream cut before response.completed makes codex fail, not succeed', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway } = await setUp(t)
  const events = responseStream('resp_codex_cut', 'this answer never completes').split(/(?<=\n\n)/)
  // created, in_progress, output_item.added, content_part.added; then the upstream ends its response cleanly.
  upstream.handle(replySse(events.slice(0, 4)))

  const run = await runCodex(t, gateway.baseURL, ['exec', '--skip-git-repo-check', '--ephemeral', 'say hi'])

  t.equal(upstream.requests.filter((req) => req.method === 'POST' && req.url === '/v1/responses').length, 1,
    'codex reached the upstream through the gateway (and, with retries off, only once)')
  t.not(run.code, 0, 'codex exited non-zero', diagnostics(run, upstream))
  t.match(run.stderr, /stream closed before response\.completed/, 'codex says why: the stream ended cleanly but incomplete', diagnostics(run, upstream))
})

t.test('an upstream connection reset mid-stream makes codex fail, not succeed', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway } = await setUp(t)
  const events = responseStream('resp_codex_reset', 'this answer never completes').split(/(?<=\n\n)/)
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
    // The socket is destroyed after the write is flushed, so the events reach the gateway first.
    res.write(events.slice(0, 4).join(''), () => res.socket?.destroy())
  })

  const run = await runCodex(t, gateway.baseURL, ['exec', '--skip-git-repo-check', '--ephemeral', 'say hi'])

  t.equal(upstream.requests.length, 1, 'codex reached the upstream through the gateway, once')
  t.not(run.code, 0, 'codex exited non-zero', diagnostics(run, upstream))
  // The gateway cuts the client's chunked response short, so codex sees a broken transfer, not a clean end.
  t.match(run.stderr, /stream disconnected before completion: .*error decoding response body/, 'codex saw a broken transfer', diagnostics(run, upstream))
  t.notMatch(run.stderr, /stream closed before response\.completed/, 'not a cleanly ended stream')
})
