/**
 * The real codex CLI (its native binary, launched by node_modules/.bin/codex) pointed at the
 * gateway through a throwaway CODEX_HOME: one `codex exec` turn goes through end to end, keeps
 * codex's own session id and originator, and a truncated upstream stream is not made whole.
 */
import t from 'tap'
import { replySse, responseStream, type MockUpstream } from '../support/mock-upstream.js'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { CODEX_TEST_TIMEOUT as TIMEOUT, checkCodexRuns, runCodex, type CodexRun } from '../support/codex-cli.js'

const API_KEY = 'sk-test-codex'
const EXEC = ['exec', '--skip-git-repo-check', '--ephemeral', 'say hi']

/** Diagnostics shown when an assertion about a run fails: what codex said, and how far it got. */
function diagnostics (run: CodexRun, upstream: MockUpstream): Record<string, unknown> {
  return { hung: run.hung, signal: run.signal, upstreamRequests: upstream.requests.length, stdout: run.stdout, stderr: run.stderr }
}

t.before(checkCodexRuns)

t.test('codex exec completes a turn through the gateway, keeping its own session id and originator', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const text = 'Hi from the mock upstream!'
  upstream.handle(replySse([responseStream('resp_codex_turn', text)]))

  const run = await runCodex(t, { baseURL: gateway.baseURL, args: EXEC, apiKey: API_KEY })

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
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const events = responseStream('resp_codex_cut', 'this answer never completes').split(/(?<=\n\n)/)
  // created, in_progress, output_item.added, content_part.added; then the upstream ends its response cleanly.
  upstream.handle(replySse(events.slice(0, 4)))

  const run = await runCodex(t, { baseURL: gateway.baseURL, args: EXEC, apiKey: API_KEY })

  t.equal(upstream.requests.filter((req) => req.method === 'POST' && req.url === '/v1/responses').length, 1,
    'codex reached the upstream through the gateway (and, with retries off, only once)')
  t.not(run.code, 0, 'codex exited non-zero', diagnostics(run, upstream))
  t.match(run.stderr, /stream closed before response\.completed/, 'codex says why: the stream ended cleanly but incomplete', diagnostics(run, upstream))
})

t.test('an upstream connection reset mid-stream makes codex fail, not succeed', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const events = responseStream('resp_codex_reset', 'this answer never completes').split(/(?<=\n\n)/)
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
    // The socket is destroyed after the write is flushed, so the events reach the gateway first.
    res.write(events.slice(0, 4).join(''), () => res.socket?.destroy())
  })

  const run = await runCodex(t, { baseURL: gateway.baseURL, args: EXEC, apiKey: API_KEY })

  t.equal(upstream.requests.length, 1, 'codex reached the upstream through the gateway, once')
  t.not(run.code, 0, 'codex exited non-zero', diagnostics(run, upstream))
  // The gateway cuts the client's chunked response short, so codex sees a broken transfer, not a clean end.
  t.match(run.stderr, /stream disconnected before completion: .*error decoding response body/, 'codex saw a broken transfer', diagnostics(run, upstream))
  t.notMatch(run.stderr, /stream closed before response\.completed/, 'not a cleanly ended stream')
})
