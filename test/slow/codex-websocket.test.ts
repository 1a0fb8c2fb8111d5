/**
 * The real codex CLI with `supports_websockets = true` through the gateway: a `codex exec` turn
 * runs over the proxied WebSocket with codex's own session id upstream, its compressed
 * response.create messages read for cache analysis; and with WEBSOCKET=reject codex falls back
 * to HTTP at once (one upgrade attempt, one POST, no retry).
 */
import type { IncomingMessage } from 'node:http'
import t, { type Test } from 'tap'
import { recordsUntil } from '../support/cache-calls.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { replySse, responseStream } from '../support/mock-upstream.js'
import { CODEX_TEST_TIMEOUT as TIMEOUT, checkCodexRuns, describeRun, runCodex, type CodexRun } from '../support/codex-cli.js'
import { answerResponseCreates, startWebSocketUpstream, type UpstreamWebSocket, type WebSocketUpstream } from '../support/websocket-upstream.js'

const API_KEY = 'sk-test'
const EXEC = ['exec', '--skip-git-repo-check', '--ephemeral', 'say hi']
const TEXT = 'Hi over the WebSocket!'
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

async function setUp (t: Test, env: Record<string, string> = {}): Promise<{ upstream: WebSocketUpstream, gateway: RunningGateway, upgradesAtGateway: IncomingMessage[] }> {
  // codex offers permessage-deflate; threshold 0 has the upstream compress every event.
  const upstream = await startWebSocketUpstream({ perMessageDeflate: { threshold: 0 } })
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...env })
  const upgradesAtGateway: IncomingMessage[] = []
  gateway.gateway.server.on('upgrade', (req: IncomingMessage) => upgradesAtGateway.push(req))
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  return { upstream, gateway, upgradesAtGateway }
}

function describe (run: CodexRun, upstream: WebSocketUpstream): string {
  return describeRun(run, `the upstream saw ${upstream.handshakes.length} upgrade(s) and ${upstream.http.requests.length} HTTP request(s)`)
}

t.before(checkCodexRuns)

t.test('codex exec completes a turn over the proxied WebSocket, with its own session id upstream', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway } = await setUp(t)
  const requests: Array<Record<string, unknown>> = []
  const sockets: UpstreamWebSocket[] = []
  // Every WebSocket codex opens gets every response.create answered (codex may prewarm first).
  let n = 0
  const acceptAll = async (): Promise<void> => {
    for (;;) {
      const socket = await upstream.nextWebSocket()
      sockets.push(socket)
      answerResponseCreates(socket, () => `resp_codex_ws_${++n}`, TEXT, (request) => requests.push(request))
    }
  }
  void acceptAll()

  const run = await runCodex(t, { baseURL: gateway.baseURL, args: EXEC, apiKey: API_KEY, supportsWebsockets: true })

  t.equal(run.code, 0, describe(run, upstream))
  t.match(run.stdout, TEXT, 'codex printed the assistant text that came over the WebSocket')
  t.equal(upstream.http.requests.length, 0, 'no HTTP fallback')
  t.ok(upstream.handshakes.length >= 1, 'codex\'s upgrade reached the upstream')
  const handshake = upstream.handshakes[0]!
  t.equal(handshake.url, '/v1/responses')
  t.equal(handshake.headers['openai-beta'], 'responses_websockets=2026-02-06')
  const codexSession = handshake.headers['thread-id']
  t.match(codexSession, UUID_V7, 'codex sent its thread id')
  t.equal(handshake.headers['session-id'], codexSession, 'session-id is codex\'s own')
  t.equal(handshake.headers.session_id, codexSession, 'session_id added, with codex\'s id')
  t.equal(handshake.headers.originator, 'codex_exec', 'codex\'s originator is kept')
  t.equal(handshake.headers.authorization, `Bearer ${API_KEY}`)
  t.match(handshake.headers['sec-websocket-extensions'], /permessage-deflate/, 'codex\'s compression offer went through')
  t.ok(sockets.every((socket) => socket.ws.extensions.startsWith('permessage-deflate')), 'and was agreed end to end')
  t.ok(requests.length >= 1 && requests.every((request) => request.type === 'response.create'), 'codex sent response.create frames')
  t.ok(requests.some((request) => request.generate !== false), 'one of them generated the turn (others may be prewarms)')

  const line = await gateway.waitForLog((l) => l.transport === 'websocket')
  t.match(line, { method: 'GET', path: '/v1/responses', status: 101, session: codexSession, session_source: 'header' })

  // Cache analysis read codex's own compressed response.create messages: every response has
  // its request's prefix, and codex's prewarm and its turn share one (same model and tools).
  await recordsUntil(gateway.origin, String(codexSession), requests.length) // the last may still be inflating
  const records = await gateway.store.calls(String(codexSession))
  t.equal(records?.length, requests.length, 'a record per response')
  const fingerprints = new Set(records?.map((record) => record.fingerprint))
  t.same([...fingerprints].map((fingerprint) => typeof fingerprint), ['string'], 'one prefix, read from every message')
})

t.test('with WEBSOCKET=reject codex falls back to HTTP at once: one upgrade refused, one POST, no retry', { timeout: TIMEOUT }, async (t) => {
  const { upstream, gateway, upgradesAtGateway } = await setUp(t, { WEBSOCKET: 'reject' })
  upstream.http.handle(replySse([responseStream('resp_codex_http', TEXT)]))

  const run = await runCodex(t, { baseURL: gateway.baseURL, args: EXEC, apiKey: API_KEY, supportsWebsockets: true })

  t.equal(run.code, 0, describe(run, upstream))
  t.match(run.stdout, TEXT, 'codex printed the text that came over HTTP')
  t.equal(upgradesAtGateway.length, 1, 'codex tried the WebSocket once and took the 426 at its word')
  t.equal(upstream.handshakes.length, 0, 'no upgrade reached the upstream')
  const posts = upstream.http.requests.filter((req) => req.method === 'POST' && req.url === '/v1/responses')
  t.equal(posts.length, 1, 'exactly one POST /v1/responses')
  t.equal(upstream.http.requests.length, 1, 'and nothing else')
  t.equal(posts[0]?.headers['session-id'], posts[0]?.headers['thread-id'], 'the HTTP turn keeps codex\'s session id')
})
