/**
 * The soak's mock upstream, run as its own process: `node soak/upstream.mjs PORT` (0: any; the soak
 * reads the port it got from /proc).
 *
 * Every answer is generated from the spec the client put in its request (see lib/payloads.mjs):
 *  - `mode: 'sse'`: a Responses event stream, `interval` ms between events, writes cut at
 *    random byte offsets, pausing while the gateway's socket is full; with `cut: 'destroy'` the
 *    connection is destroyed after `cutAfter` events (a mid-stream failure), with `cut: 'stall'`
 *    it goes silent (for the gateway's idle timeout to end);
 *  - `mode: 'json'`: a non-streamed answer, with content-length or chunked;
 *  - `mode: 'status'`: an OpenAI-style error with `spec.status`;
 *  - a WebSocket on `/v1/responses` (permessage-deflate when the query has `deflate=1`) that
 *    answers each `response.create` message with one event per text message.
 *
 * Every answer carries the session headers the upstream received (`x-soak-session`,
 * `x-soak-session-underscore`; on the WebSocket's 101 too) and `x-soak-sha256` of its full body.
 *
 * `GET /_soak/stats` (straight to the upstream, not through the gateway) tells the soak what
 * the upstream saw: exchanges still open, and when each one it did not end itself was closed
 * from the gateway's side (monotonic clock, comparable with the soak process's).
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocketServer } from 'ws'
import { errorBody, jsonBody, parseSpec, sha256, specOf, sseEvents, webSocketMessages, writePieces } from './lib/payloads.mjs'

const port = Number(process.argv[2])
/**
 * `--corrupt-every N`: flip one byte in every Nth streamed answer (its x-soak-sha256 still the
 * intended bytes'), as a relay that damaged bytes would. Only for testing the soak itself.
 */
const corruptEvery = process.argv[3] === '--corrupt-every' ? Number(process.argv[4]) : 0
let streamed = 0
const STALL_LIMIT_MS = 60_000

const stats = {
  httpRequests: 0,
  httpOpen: 0,
  httpCompleted: 0,
  /** Exchanges the upstream broke on purpose (`cut: 'destroy'`). */
  httpDestroyed: 0,
  /** Spec id → { kind, atUs }: answers closed from the gateway's side before their end. */
  httpClosedEarly: {},
  webSockets: 0,
  webSocketsOpen: 0,
  webSocketTurns: 0,
  /** Close code the upstream's end saw → count. */
  webSocketCloseCodes: {},
  /** Spec id of the turn under way → { kind, atUs, code }: WebSockets that went while a turn was being answered. */
  webSocketClosedEarly: {},
  /** Requests whose spec could not be read: the gateway changed the body, or the soak is broken. */
  badRequests: 0
}

const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

const server = createServer((req, res) => {
  if (req.url === '/_soak/stats') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(stats))
    return
  }
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    const query = new URL(req.url, 'http://upstream').searchParams
    // POSTs carry the spec in their body, GETs (retrieving a response) in the query.
    const spec = chunks.length > 0 ? specOf(Buffer.concat(chunks).toString('utf8')) : parseSpec(query.get('soak'))
    if (spec === undefined) {
      stats.badRequests++
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end('{"error":{"message":"no soak spec","type":"invalid_request_error","code":"no_spec","param":null}}')
      return
    }
    answer(req, res, spec)
  })
})

function sessionHeaders (req) {
  return {
    'x-soak-session': req.headers['session-id'] ?? '',
    'x-soak-session-underscore': req.headers.session_id ?? '',
    'x-soak-id': String(req.headers['x-soak-id'] ?? '')
  }
}

function answer (req, res, spec) {
  stats.httpRequests++
  stats.httpOpen++
  let brokeItself = false
  res.on('close', () => {
    stats.httpOpen--
    if (res.writableFinished) stats.httpCompleted++
    else if (!brokeItself) stats.httpClosedEarly[spec.id] = { kind: spec.kind, atUs: monotonicMicros() }
  })
  if (spec.mode === 'status') {
    const body = errorBody(spec)
    res.writeHead(spec.status, { 'content-type': 'application/json', 'content-length': body.length, 'x-soak-sha256': sha256(body), ...sessionHeaders(req) })
    res.end(body)
    return
  }
  if (spec.mode === 'json') {
    const body = jsonBody(spec)
    const headers = { 'content-type': 'application/json', 'x-soak-sha256': sha256(body), ...sessionHeaders(req) }
    if (!spec.chunked) headers['content-length'] = body.length
    res.writeHead(200, headers)
    if (!spec.chunked) {
      res.end(body)
      return
    }
    const half = Math.floor(body.length / 2)
    res.write(body.subarray(0, half))
    setImmediate(() => res.end(body.subarray(half)))
    return
  }
  const events = sseEvents(spec)
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-soak-sha256': sha256(Buffer.concat(events)), ...sessionHeaders(req) })
  if (corruptEvery > 0 && ++streamed % corruptEvery === 0) {
    const last = events.length - 1
    events[last] = Buffer.from(events[last])
    events[last][8] ^= 0x20
  }
  streamEvents(res, events, spec, () => { brokeItself = true }).catch(() => res.destroy())
}

async function streamEvents (res, events, spec, markBroken) {
  const pieces = writePieces(events, spec.seed)
  for (let i = 0; i < pieces.length; i++) {
    if (res.destroyed) return
    if (spec.cut !== undefined && i === spec.cutAfter) {
      if (spec.cut === 'destroy') {
        markBroken()
        stats.httpDestroyed++
        res.socket?.destroy()
        return
      }
      // stall: stay silent; the gateway's idle timeout should end the exchange long before this.
      await Promise.race([once(res, 'close'), sleep(STALL_LIMIT_MS)])
      res.destroy()
      return
    }
    for (const piece of pieces[i]) {
      if (!res.write(piece)) await Promise.race([once(res, 'drain'), once(res, 'close')])
      if (res.destroyed) return
    }
    if (spec.interval > 0 && i < pieces.length - 1) await sleep(spec.interval * (0.5 + Math.random()))
    else if (i % 4 === 3) await new Promise((resolve) => setImmediate(resolve)) // let some writes leave on their own
  }
  res.end()
}

// Two servers so deflate is decided per connection: the query's `deflate=1` picks the one that offers it.
const plain = new WebSocketServer({ noServer: true, perMessageDeflate: false })
const deflating = new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } })
for (const wss of [plain, deflating]) {
  wss.on('headers', (headers, req) => {
    for (const [name, value] of Object.entries(sessionHeaders(req))) headers.push(`${name}: ${value}`)
  })
}

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {})
  const url = new URL(req.url, 'http://upstream')
  const wss = url.searchParams.get('deflate') === '1' ? deflating : plain
  wss.handleUpgrade(req, socket, head, (ws) => serveWebSocket(ws))
})

function serveWebSocket (ws) {
  stats.webSockets++
  stats.webSocketsOpen++
  let turn // the spec being answered
  let queue = Promise.resolve()
  ws.on('error', () => {})
  ws.on('message', (data, isBinary) => {
    const spec = isBinary ? undefined : specOf(data.toString('utf8'))
    if (spec === undefined) {
      stats.badRequests++
      ws.close(1008, 'no soak spec')
      return
    }
    queue = queue.then(() => answerTurn(ws, spec, (s) => { turn = s }))
  })
  ws.on('close', (code) => {
    stats.webSocketsOpen--
    stats.webSocketCloseCodes[code] = (stats.webSocketCloseCodes[code] ?? 0) + 1
    if (turn !== undefined) stats.webSocketClosedEarly[turn.id] = { kind: turn.kind, atUs: monotonicMicros(), code }
  })
}

async function answerTurn (ws, spec, setTurn) {
  if (ws.readyState !== ws.OPEN) return
  setTurn(spec)
  stats.webSocketTurns++
  const messages = webSocketMessages(spec)
  for (let i = 0; i < messages.length; i++) {
    if (ws.readyState !== ws.OPEN) return
    ws.send(messages[i])
    if (ws.bufferedAmount > 1 << 20) await sleep(5)
    if (spec.interval > 0 && i < messages.length - 1) await sleep(spec.interval * (0.5 + Math.random()))
  }
  setTurn(undefined)
}

// Long streams and idle keep-alive connections are the point: no server-side timeouts.
server.keepAliveTimeout = 5_000
server.headersTimeout = 60_000
server.requestTimeout = 0
server.listen({ port, host: '127.0.0.1', backlog: 4096 })
process.on('SIGTERM', () => process.exit(0))
