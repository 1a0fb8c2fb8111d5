/**
 * No property access on the request path misses its inline cache on every request. Such a miss
 * goes to V8's runtime each time (~1 µs apiece) and shows in no profile as a function of ours.
 * The case that made this test: on Node 20 (V8 11.3) `{ ...outcome, ttfbMs, bytesOut }` gave
 * every relay outcome a map of its own, so its eight reads in the exchange's end missed on every
 * request, about 10 % of the gateway's CPU (bench/HISTORY.md, session 10).
 *
 * The built CLI runs with V8's `--log-ic`, which writes one line per inline-cache transition
 * (`LoadIC,pc,time,line,column,old,new,map,key,…`). A site warms up in a handful of transitions
 * (uninitialized → monomorphic → polymorphic → megamorphic) whatever the load; a site that misses
 * per request logs once per request. Start-up has sites of its own that log hundreds of lines
 * (the module loader's, once per module), so only what is logged after a first round of calls
 * counts: over a second round of REQUESTS calls of each kind, no site may log a tenth as many
 * lines. Each round also has REQUESTS responses over WebSockets (a message path of its own).
 * Checked twice: tracing off, and on with every request sampled (its span and export code).
 * Runs the built CLI (`npm run build` first when run alone).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Pool } from 'undici'
import { answerCreatesWithChosenUsage, webSocketCall } from '../support/cache-calls.js'
import { chatCompletionStream, chatUsage } from '../support/chat-completions.js'
import { startGatewayProcess } from '../support/gateway-process.js'
import { startOtlpReceiver } from '../support/otlp-receiver.js'
import { replySse, responseStream, type UpstreamHandler } from '../support/mock-upstream.js'
import { startWebSocketUpstream, type WebSocketUpstream } from '../support/websocket-upstream.js'
import { WebSocket, type WsSocket } from '../support/ws.js'

/** Calls of each kind; the hot path's sites are then well past warming up. */
const REQUESTS = 600
const CONNECTIONS = 8
/** WebSockets open through both rounds; REQUESTS responses over them per round. */
const WEBSOCKETS = 4

const responsesAnswer = replySse([responseStream('resp_ic', 'hello')])
const chatAnswer = replySse([chatCompletionStream('chatcmpl-ic', 'hello', { usage: chatUsage() })])
const byPath: UpstreamHandler = async (req, res, raw) => {
  await (req.url.endsWith('/chat/completions') ? chatAnswer : responsesAnswer)(req, res, raw)
}

/** What the hot path serves: a Responses call without a session header (its body decides), one with codex's `session-id`, a chat stream. */
function call (i: number): { path: string, headers: Record<string, string>, body: string } {
  switch (i % 3) {
    case 0: return { path: '/v1/responses', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-test', input: 'hi', stream: true, prompt_cache_key: `k${i % 20}` }) }
    case 1: return { path: '/v1/responses', headers: { 'content-type': 'application/json', 'session-id': `s${i % 20}` }, body: JSON.stringify({ model: 'gpt-test', instructions: 'be brief', input: 'hi', stream: true }) }
    default: return { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } }) }
  }
}

/**
 * Transitions logged per site (`kind line:column key`), from a `--log-ic` log. Accesses in code
 * without feedback yet (state `X`: code run a few times, like the shutdown's scan of
 * /proc/net/tcp, a line per socket) are logged every time and left out: code run per request
 * gets its feedback within the first round.
 */
function transitionsBySite (log: string): Map<string, number> {
  const sites = new Map<string, number>()
  for (const line of log.split('\n')) {
    const fields = line.split(',')
    if (fields.length < 9 || !fields[0]!.endsWith('IC') || fields[6] === 'X') continue
    const site = `${fields[0]} ${fields[3]}:${fields[4]} ${fields[8]}`
    sites.set(site, (sites.get(site) ?? 0) + 1)
  }
  return sites
}

t.test('on the request path no inline cache misses once per request or WebSocket response', async (t) => {
  await checkInlineCaches(t, {})
})

t.test('nor with tracing on, every request sampled: the span and export code runs per request too', async (t) => {
  const receiver = await startOtlpReceiver()
  t.teardown(receiver.close)
  await checkInlineCaches(t, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_on', OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048', OTEL_BSP_MAX_QUEUE_SIZE: '65536' })
  t.ok(receiver.spans.length >= 2 * 3 * REQUESTS, `spans were exported (${receiver.spans.length})`)
})

async function checkInlineCaches (t: Test, env: Record<string, string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ic-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const logFile = join(dir, 'v8.log')
  const upstream = await startWebSocketUpstream({ http: byPath })
  t.teardown(upstream.close)
  const gateway = startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', UPSTREAM_URL: upstream.url, ...env },
    ['--log-ic', `--logfile=${logFile}`, '--no-logfile-per-isolate'])
  const port = await gateway.port()
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS })
  t.teardown(async () => { await pool.close() })
  const sockets = await Promise.all(Array.from({ length: WEBSOCKETS }, async (_, i) => await openWebSocket(t, upstream, port, `ws-${i}`)))

  const round = async (): Promise<number> => {
    let next = 0
    let failed = 0
    const worker = async (): Promise<void> => {
      while (next < 3 * REQUESTS) {
        const { path, headers, body } = call(next++)
        const res = await pool.request({ method: 'POST', path, headers, body })
        const text = await res.body.text()
        if (res.statusCode !== 200 || !text.includes('usage')) failed++
      }
    }
    // Each WebSocket's responses one after another, as a client's turns are.
    const talk = async (ws: WsSocket): Promise<void> => {
      try {
        for (let i = 0; i < REQUESTS / WEBSOCKETS; i++) await webSocketCall(ws, { usage: [100, 80] })
      } catch (err) {
        const ends = gateway.logs.filter((line) => line.transport === 'websocket' || line.level !== 'info')
        throw new Error(`${(err as Error).message}; the gateway's WebSocket and warning lines: ${JSON.stringify(ends.slice(-6))}; stderr: ${gateway.stderr().slice(-2000)}`)
      }
    }
    await Promise.all([...Array.from({ length: CONNECTIONS }, worker), ...sockets.map(talk)])
    return failed
  }
  t.equal(await round(), 0, 'warming up: every call was answered with its stream')
  // The log only grows: what follows this point was logged during the second round (give or
  // take V8's write buffer, a few kB of the first round's end).
  const warm = readFileSync(logFile, 'latin1')
  const measuredFrom = warm.lastIndexOf('\n') + 1
  t.equal(await round(), 0, 'measured: every call was answered with its stream')
  for (const ws of sockets) ws.close(1000)
  gateway.child.kill('SIGTERM')
  t.match(await gateway.exited, { code: 0 }, 'the gateway stopped cleanly: V8 wrote out its log')

  const log = readFileSync(logFile, 'latin1')
  t.ok(transitionsBySite(log).size > 100, 'the log holds inline-cache transitions')
  const sites = transitionsBySite(log.slice(measuredFrom))
  const perRequest = [...sites].filter(([, count]) => count >= REQUESTS / 10).map(([site, count]) => `${site}: ${count}`)
  t.same(perRequest, [], `no site logged ${REQUESTS / 10} transitions or more over the second round's ${3 * REQUESTS} requests and ${REQUESTS} WebSocket responses`)
}

/** A client WebSocket through the gateway, its upstream end answering every response.create with a whole response. */
async function openWebSocket (t: Test, upstream: WebSocketUpstream, port: number, session: string): Promise<WsSocket> {
  const accepted = upstream.nextWebSocket()
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/responses`, { perMessageDeflate: false, headers: { 'session-id': session } })
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve())
    ws.on('error', reject)
  })
  // A WebSocket that closes mid-round fails its next send: say how it closed.
  ws.on('error', (err) => t.comment(`${session}: ${err.message}`))
  ws.on('close', (code, reason) => { if (code !== 1000) t.comment(`${session}: closed ${code} ${reason.toString('utf8')}`) })
  answerCreatesWithChosenUsage(await accepted)
  return ws
}
