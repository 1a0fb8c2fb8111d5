/**
 * Responses over WebSocket through the gateway: the upgrade goes upstream with the session's
 * headers, frames pass byte for byte both ways (compressed or not), closes and vanishings
 * propagate, refusals and failures reach the client as HTTP answers, WEBSOCKET=reject answers
 * 426, lineage learned from WebSocket frames carries over to HTTP, and shutdown closes sockets.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startGateway, startGatewayWithUnreachableUpstream, type RunningGateway } from '../support/gateway.js'
import { tryConnect } from '../support/gateway-process.js'
import { until } from '../support/polling.js'
import { received as requestReceived, replySse, responseStream } from '../support/mock-upstream.js'
import { rawExchange, rawRequest } from '../support/raw-http.js'
import { acceptRaw, encodeFrame, rawWebSocket, writeInPieces } from '../support/raw-websocket.js'
import { answerResponseCreates, responseEvents, startWebSocketUpstream, type UpstreamWebSocket, type WebSocketUpstream, type WebSocketUpstreamOptions } from '../support/websocket-upstream.js'
import { WebSocket, type WsSocket } from '../support/ws.js'

const TEXT = 0x1
const BINARY = 0x2
const CONTINUATION = 0x0
const PING = 0x9
const PONG = 0xa

async function setUp (t: Test, env: Record<string, string> = {}, options: WebSocketUpstreamOptions = {}): Promise<{ upstream: WebSocketUpstream, gateway: RunningGateway }> {
  const upstream = await startWebSocketUpstream(options)
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...env })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  return { upstream, gateway }
}

/** Opens a `ws` client through the gateway and waits for it to be open. */
async function openClient (t: Test, url: string, options: { headers?: Record<string, string>, perMessageDeflate?: boolean | Record<string, unknown>, onUpgrade?: (response: IncomingMessage) => void } = {}): Promise<WsSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: options.perMessageDeflate ?? false, headers: options.headers ?? {} })
  t.teardown(() => { ws.terminate() })
  if (options.onUpgrade !== undefined) ws.on('upgrade', options.onUpgrade)
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve())
    ws.on('error', reject)
  })
  return ws
}

function wsURL (gateway: RunningGateway, path = '/v1/responses'): string {
  return `ws://127.0.0.1:${gateway.port}${path}`
}

async function nextMessage (ws: WsSocket): Promise<{ data: Buffer, isBinary: boolean }> {
  return await new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })))
}

async function closedWith (ws: WsSocket): Promise<{ code: number, reason: string }> {
  return await new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })))
}

function webSocketLog (gateway: RunningGateway): Promise<Record<string, unknown>> {
  return gateway.waitForLog((line) => line.transport === 'websocket')
}

/** The shutdown tests run twice: over plain frames, and with every message compressed (threshold 0), so the gateway reads each message's type only inflated. */
const SHUTDOWN_FRAMES: Array<[string, false | Record<string, unknown>]> = [
  ['plain frames', false],
  ['compressed frames', { threshold: 0 }]
]

/** The upstream sends `events`; resolves once the client has received every one. */
async function relayedWhole (client: WsSocket, server: UpstreamWebSocket, events: string[]): Promise<void> {
  const received = new Promise<void>((resolve) => {
    let seen = 0
    const count = (): void => {
      if (++seen < events.length) return
      client.off('message', count)
      resolve()
    }
    client.on('message', count)
  })
  for (const event of events) server.ws.send(event)
  await received
}

t.test('the upstream handshake carries the client\'s headers and its session under both spellings', async (t) => {
  const { upstream, gateway } = await setUp(t)
  const handshake = upstream.nextHandshake()
  await openClient(t, wsURL(gateway, '/v1/responses?x=1'), {
    headers: { 'session-id': 'ws-session-42', originator: 'codex_exec', 'openai-beta': 'responses_websockets=2026-02-06', authorization: 'Bearer sk-client' }
  })
  const seen = await handshake
  t.equal(seen.url, '/v1/responses?x=1', 'same path and query mapping as HTTP')
  t.equal(seen.headers['session-id'], 'ws-session-42')
  t.equal(seen.headers.session_id, 'ws-session-42')
  t.equal(seen.headers.originator, 'codex_exec', 'the client\'s originator is kept')
  t.equal(seen.headers['openai-beta'], 'responses_websockets=2026-02-06')
  t.equal(seen.headers.authorization, 'Bearer sk-client')
  t.equal(seen.headers.upgrade, 'websocket')
  t.equal(seen.headers.connection, 'upgrade')
  t.equal(seen.headers['sec-websocket-version'], '13')
  t.type(seen.headers['sec-websocket-key'], 'string', 'the client\'s key goes through, so the upstream\'s accept matches it')
  t.equal(seen.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'session-id').length, 1, 'one session-id, not the client\'s and the gateway\'s')
})

t.test('without a session header the WebSocket gets its connection\'s session and the default originator', async (t) => {
  const { upstream, gateway } = await setUp(t)
  const handshake = upstream.nextHandshake()
  const ws = await openClient(t, wsURL(gateway))
  const seen = await handshake
  t.match(seen.headers['session-id'], /^[0-9a-f-]{36}$/)
  t.equal(seen.headers.session_id, seen.headers['session-id'])
  t.equal(seen.headers.originator, 'codex_cli_rs')
  ws.close(1000)
  const line = await webSocketLog(gateway)
  t.equal(line.session, seen.headers['session-id'])
  t.equal(line.session_source, 'connection')
})

t.test('an insane session id is answered 400 on the socket and nothing goes upstream', async (t) => {
  const { upstream, gateway } = await setUp(t)
  const { response } = await rawExchange(gateway.port, rawRequest(
    'GET /v1/responses HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'session-id: has a space'))
  t.equal(response.status, 400)
  t.equal(JSON.parse(response.body.toString('utf8')).error.code, 'invalid_session_id')
  t.equal(upstream.handshakes.length, 0)
})

t.test('frames pass byte for byte in both directions', async (t) => {
  for (const deflate of [false, true]) {
    t.test(deflate ? 'with permessage-deflate agreed' : 'without compression', async (t) => {
      const { upstream, gateway } = await setUp(t)
      // Frames that travel in the same packet as the handshake on each side: the client's right
      // behind its request, the upstream's right behind its 101.
      const early = encodeFrame({ opcode: TEXT, payload: '{"type":"response.create","early":true}', masked: true })
      const hello = encodeFrame({ opcode: TEXT, payload: '{"type":"session.hello"}' })
      const accepted = new Promise<{ socket: Socket, end: ReturnType<typeof acceptRaw> }>((resolve) => {
        upstream.handleUpgrade((req, socket, head) => {
          const extensions = deflate ? ['Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover'] : []
          resolve({ socket, end: acceptRaw(req, socket, head, [...extensions, 'X-Upstream: yes'], hello) })
        })
      })
      const client = await rawWebSocket(gateway.port, '/v1/responses', deflate ? { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } : {}, early)
      const upstreamSide = await accepted
      t.equal(client.status, 101)
      t.ok((await upstreamSide.end.receivedAtLeast(early.length)).subarray(0, early.length).equals(early), 'a frame sent right behind the handshake goes through')
      t.ok((await client.receivedAtLeast(hello.length)).subarray(0, hello.length).equals(hello), 'a frame sent right behind the 101 goes through')
      t.ok(client.headers.some(([name, value]) => name === 'x-upstream' && value === 'yes'), 'the upstream\'s own headers reach the client')
      if (deflate) t.ok(client.headers.some(([name, value]) => name === 'sec-websocket-extensions' && value.startsWith('permessage-deflate')), 'the upstream\'s extension answer reaches the client')
      const json = JSON.stringify({ type: 'response.create', input: 'héllo ✓' })
      const big = Buffer.alloc(70_000, 7)

      const fromClient = Buffer.concat([
        encodeFrame({ opcode: TEXT, payload: json, masked: true }),
        encodeFrame({ opcode: BINARY, payload: Buffer.from([0, 1, 2, 255]), masked: true }),
        encodeFrame({ opcode: TEXT, payload: 'frag', fin: false, masked: true, rsv1: deflate }),
        encodeFrame({ opcode: PING, payload: 'are you there', masked: true }),
        encodeFrame({ opcode: CONTINUATION, payload: 'mented', fin: false, masked: true }),
        encodeFrame({ opcode: CONTINUATION, payload: ' message', masked: true }),
        encodeFrame({ opcode: BINARY, payload: big, masked: true }),
        encodeFrame({ opcode: PONG, payload: '', masked: true })
      ])
      await writeInPieces(client.socket, fromClient, 5)
      const atUpstream = await upstreamSide.end.receivedAtLeast(early.length + fromClient.length)
      t.ok(atUpstream.equals(Buffer.concat([early, fromClient])), 'the upstream received exactly the client\'s bytes')

      const fromUpstream = Buffer.concat([
        encodeFrame({ opcode: TEXT, payload: JSON.stringify({ type: 'response.created', response: { id: 'resp_raw' } }) }),
        // Not valid deflate data when flagged compressed: the gateway's reading gives up, the relay does not.
        encodeFrame({ opcode: TEXT, payload: Buffer.from([0xf2, 0x34, 0x00]), rsv1: deflate }),
        encodeFrame({ opcode: TEXT, payload: 'a', fin: false }),
        encodeFrame({ opcode: PONG, payload: 'here' }),
        encodeFrame({ opcode: CONTINUATION, payload: 'b' }),
        encodeFrame({ opcode: BINARY, payload: big }),
        encodeFrame({ opcode: PING, payload: '' })
      ])
      await writeInPieces(upstreamSide.socket, fromUpstream, 3)
      const atClient = await client.receivedAtLeast(hello.length + fromUpstream.length)
      t.ok(atClient.equals(Buffer.concat([hello, fromUpstream])), 'the client received exactly the upstream\'s bytes')
      client.socket.destroy()
      await upstreamSide.end.ended
    })
  }
})

t.test('permessage-deflate is agreed end to end and compressed messages arrive whole', async (t) => {
  for (const deflate of [false, true]) {
    t.test(deflate ? 'both ends offer and accept it' : 'neither end uses it', async (t) => {
      const { upstream, gateway } = await setUp(t, {}, { perMessageDeflate: deflate })
      const accepted = upstream.nextWebSocket()
      const client = await openClient(t, wsURL(gateway), { perMessageDeflate: deflate })
      const server = await accepted
      t.equal(client.extensions, server.ws.extensions, 'both ends see the same agreement')
      t.equal(client.extensions.startsWith('permessage-deflate'), deflate)
      const long = JSON.stringify({ type: 'response.create', input: 'compress me '.repeat(5000) })
      client.send(long)
      t.equal((await server.nextMessage()).data.toString('utf8'), long)
      const binary = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 7))
      const received = nextMessage(client)
      server.ws.send(binary, { binary: true })
      const message = await received
      t.ok(message.isBinary && message.data.equals(binary), 'binary from the upstream arrives as sent')
      client.close(1000)
      t.equal((await server.closed).code, 1000)
    })
  }
})

t.test('close codes and reasons propagate both ways, and the log line says who closed', async (t) => {
  t.test('the client closes', async (t) => {
    const { upstream, gateway } = await setUp(t)
    const accepted = upstream.nextWebSocket()
    const client = await openClient(t, wsURL(gateway))
    const server = await accepted
    client.close(4001, 'bye from the client')
    t.same(await server.closed, { code: 4001, reason: 'bye from the client' })
    t.same(await closedWith(client), { code: 4001, reason: 'bye from the client' }, 'the upstream\'s echo comes back')
    const line = await webSocketLog(gateway)
    t.match(line, { transport: 'websocket', method: 'GET', path: '/v1/responses', status: 101, ended_by: 'client', close_code: 4001 })
  })
  t.test('the upstream closes', async (t) => {
    const { upstream, gateway } = await setUp(t)
    const accepted = upstream.nextWebSocket()
    const client = await openClient(t, wsURL(gateway))
    const server = await accepted
    const clientClosed = closedWith(client)
    server.ws.close(4002, 'bye from the upstream')
    t.same(await clientClosed, { code: 4002, reason: 'bye from the upstream' })
    t.same(await server.closed, { code: 4002, reason: 'bye from the upstream' })
    const line = await webSocketLog(gateway)
    t.match(line, { status: 101, ended_by: 'upstream', close_code: 4002 })
  })
})

t.test('a client that vanishes takes the upstream connection with it, and the other way round', async (t) => {
  t.test('the client\'s socket is destroyed', async (t) => {
    const { upstream, gateway } = await setUp(t)
    const accepted = upstream.nextWebSocket()
    const client = await openClient(t, wsURL(gateway))
    const server = await accepted
    client.terminate()
    t.equal((await server.closed).code, 1006, 'the upstream\'s connection dropped, no closing handshake')
    t.match(await webSocketLog(gateway), { ended_by: 'client', close_code: undefined })
  })
  t.test('the upstream\'s socket is destroyed', async (t) => {
    const { upstream, gateway } = await setUp(t)
    const accepted = upstream.nextWebSocket()
    const client = await openClient(t, wsURL(gateway))
    const server = await accepted
    const clientClosed = closedWith(client)
    server.ws.terminate()
    t.equal((await clientClosed).code, 1006)
    t.match(await webSocketLog(gateway), { ended_by: 'upstream' })
  })
})

t.test('regression: once both Close frames have passed, ends that keep their connections open are dropped (after 5 s), and the tunnel is logged', async (t) => {
  // Before, only a FIN started that wait: two ends that finished the closing handshake but never
  // closed TCP held the tunnel, both sockets and the in-flight count for good.
  t.setTimeout(30_000) // fails here, not at tap's timeout
  const { upstream, gateway } = await setUp(t)
  let upstreamEnd: ReturnType<typeof acceptRaw> | undefined
  const upstreamSocket = new Promise<Socket>((resolve) => upstream.handleUpgrade((req, socket, head) => {
    upstreamEnd = acceptRaw(req, socket, head)
    socket.removeAllListeners('end') // this upstream never closes its side, not even after a FIN
    resolve(socket)
  }))
  const client = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': 'close-no-fin' })
  t.equal(client.status, 101)
  const server = await upstreamSocket
  t.teardown(() => { server.destroy() })
  // The gateway letting go of it is its FIN: this end, half-open, never closes by itself.
  const serverEnded = new Promise<void>((resolve) => server.once('end', () => resolve()))
  const code = Buffer.from([0x0f, 0xa1]) // 4001
  client.socket.write(encodeFrame({ opcode: 0x8, payload: code, masked: true }))
  await upstreamEnd!.receivedAtLeast(2 + 4 + 2) // the client's masked Close
  server.write(encodeFrame({ opcode: 0x8, payload: code }))
  await client.receivedAtLeast(2 + 2) // the upstream's Close echoed: the handshake is done
  await client.closed
  await serverEnded
  t.pass('the gateway closed both connections though neither end did')
  t.match(await webSocketLog(gateway), { status: 101, ended_by: 'client', close_code: 4001 })
})

t.test('an upstream that refuses the upgrade: the client gets its status, headers and body, then close', async (t) => {
  const { upstream, gateway } = await setUp(t)
  const body = JSON.stringify({ error: { message: 'WebSockets are not enabled for this key', type: 'invalid_request_error', code: 'forbidden' } })
  upstream.handleUpgrade((_req, socket) => {
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-request-id: req_123\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  })
  const { response } = await rawExchange(gateway.port, rawRequest(
    'GET /v1/responses HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'))
  t.equal(response.status, 403)
  t.equal(response.body.toString('utf8'), body)
  t.ok(response.headers.some(([name, value]) => name === 'x-request-id' && value === 'req_123'))
  t.match(await webSocketLog(gateway), { transport: 'websocket', status: 403, ended_by: 'upstream', bytes_out: Buffer.byteLength(body) })
})

t.test('an unreachable upstream is a 502, a silent one a 504, as JSON', async (t) => {
  t.test('unreachable', async (t) => {
    const gateway = await startGatewayWithUnreachableUpstream(t)
    const client = await rawWebSocket(gateway.port, '/v1/responses')
    t.equal(client.status, 502)
    await client.closed
    t.equal(JSON.parse(bodyOf(client.received())).error.code, 'upstream_unreachable')
  })
  t.test('silent', async (t) => {
    const { upstream, gateway } = await setUp(t, { UPSTREAM_HEADERS_TIMEOUT_MS: '200' })
    upstream.handleUpgrade(() => {}) // never answers
    const client = await rawWebSocket(gateway.port, '/v1/responses')
    t.equal(client.status, 504)
    await client.closed
    t.equal(JSON.parse(bodyOf(client.received())).error.code, 'upstream_timeout')
  })
})

t.test('WEBSOCKET=reject answers 426 with a JSON error and closes; nothing goes upstream', async (t) => {
  const { upstream, gateway } = await setUp(t, { WEBSOCKET: 'reject' })
  const client = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': 'would-be-fine' })
  t.equal(client.status, 426)
  await client.closed
  t.equal(JSON.parse(bodyOf(client.received())).error.code, 'websockets_disabled')
  t.ok(client.headers.some(([name, value]) => name === 'connection' && value === 'close'))
  t.equal(upstream.handshakes.length, 0)
  t.equal(upstream.http.requests.length, 0)
})

t.test('upgrades off /v1 are 404s; other upgrade offers (h2c) are served as plain HTTP', async (t) => {
  const { upstream, gateway } = await setUp(t)
  const client = await rawWebSocket(gateway.port, '/healthz')
  t.equal(client.status, 404)
  await client.closed
  t.equal(JSON.parse(bodyOf(client.received())).error.code, 'not_found')

  const health = await rawExchange(gateway.port, rawRequest('GET /healthz HTTP/1.1', 'Host: x', 'Connection: Upgrade, HTTP2-Settings, close', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'))
  t.equal(health.response.status, 200)
  const proxied = await rawExchange(gateway.port, rawRequest('GET /v1/models HTTP/1.1', 'Host: x', 'Connection: Upgrade, HTTP2-Settings, close', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'))
  t.equal(proxied.response.status, 200)
  t.equal(upstream.http.requests.at(-1)?.url, '/v1/models', 'forwarded over HTTP/1.1')
  t.equal(upstream.http.requests.at(-1)?.headers.upgrade, undefined, 'without the upgrade offer')
  t.equal(upstream.handshakes.length, 0)
})

t.test('regression: a POST offering h2c (curl --http2 -d) is served over HTTP/1.1 with its body, and its connection stays usable', async (t) => {
  const { upstream, gateway } = await setUp(t)
  // Long enough that part of the body comes with the head and the rest in later reads.
  const body = JSON.stringify({ model: 'gpt-5', input: 'x'.repeat(256 * 1024) })
  const socket = connect(gateway.port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const answers = (count: number): Promise<void> => new Promise((resolve) => {
    const check = (): void => { if (received.split('HTTP/1.1 200').length > count) { socket.off('data', check); resolve() } }
    socket.on('data', check)
    check()
  })
  socket.write('POST /v1/responses HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n' +
    `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
  const post = await requestReceived(upstream.http, (req) => req.method === 'POST')
  t.equal(post.body.toString('utf8'), body, 'the upstream got the whole body')
  t.equal(post.headers.upgrade, undefined, 'without the upgrade offer')
  t.equal(post.headers['http2-settings'], undefined)
  await answers(1)
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await answers(2)
  t.notOk(/^connection: close/im.test(received), 'kept alive like any HTTP/1.1 request')
  t.equal(upstream.handshakes.length, 0)
})

t.test('lineage: a response id seen in a WebSocket frame is continued over HTTP in the same session', async (t) => {
  const variants: Array<[string, false | Record<string, unknown>]> = [
    ['plain frames', false],
    // threshold 0: ws compresses every message, however short, so ids can only be read inflated.
    ['compressed frames, the window kept across messages', { threshold: 0 }],
    ['compressed frames, the compressor reset after each message', { threshold: 0, serverNoContextTakeover: true }]
  ]
  for (const [name, upstreamDeflate] of variants) {
    const deflate = upstreamDeflate !== false
    t.test(name, async (t) => {
      const { upstream, gateway } = await setUp(t, {}, { perMessageDeflate: upstreamDeflate })
      const accepted = upstream.nextWebSocket()
      const handshake = upstream.nextHandshake()
      let agreed: string | undefined
      const client = await openClient(t, wsURL(gateway), { perMessageDeflate: deflate, onUpgrade: (response) => { agreed = response.headers['sec-websocket-extensions'] } })
      const server = await accepted
      if (upstreamDeflate !== false && upstreamDeflate.serverNoContextTakeover === true) t.match(agreed, /server_no_context_takeover/)
      const wsSession = (await handshake).headers['session-id']
      let n = 0
      answerResponseCreates(server, () => `resp_ws_${deflate ? 'z' : 'p'}_${++n}`, 'hello over a socket')
      // Two turns: ids of both are learned.
      for (let turn = 1; turn <= 2; turn++) {
        const events: string[] = []
        await new Promise<void>((resolve) => {
          const onMessage = (data: Buffer): void => {
            events.push(data.toString('utf8'))
            if (events.length === responseEvents('x', 'y').length) {
              client.off('message', onMessage)
              resolve()
            }
          }
          client.on('message', onMessage)
          client.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: `turn ${turn}` }))
        })
        t.equal(JSON.parse(events[0]!).response.id, `resp_ws_${deflate ? 'z' : 'p'}_${turn}`)
      }
      upstream.http.handle(replySse([responseStream('resp_http_1', 'continued')]))
      const response = await postResponses(gateway, { model: 'gpt-test', input: 'go on', previous_response_id: `resp_ws_${deflate ? 'z' : 'p'}_2`, stream: true })
      t.equal(response.status, 200)
      const post = upstream.http.requests.at(-1)
      t.equal(post?.headers['session-id'], wsSession, 'the HTTP request got the WebSocket\'s session')
      const line = await gateway.waitForLog((l) => l.transport === undefined && l.path === '/v1/responses')
      t.equal(line.session_source, 'previous_response')
      if (!deflate) {
        // Plain frames are read as they pass, so both turns' usage is in before the POST went out.
        const usage = await fetch(`${gateway.origin}/gateway/sessions/${String(wsSession)}`).then(async (r) => await r.json() as Record<string, unknown>)
        t.match(usage, { requests: 3, input_tokens: 360, cached_tokens: 300, output_tokens: 21 }, 'each WebSocket turn counts as a request, with its tokens')
      }
    })
  }
})

t.test('regression: a WebSocket response that ends in an error counts as a request of the session, with no tokens, as a failed HTTP call does', async (t) => {
  const { upstream, gateway } = await setUp(t)
  const accepted = upstream.nextWebSocket()
  const handshake = upstream.nextHandshake()
  const client = await openClient(t, wsURL(gateway))
  const server = await accepted
  const wsSession = String((await handshake).headers['session-id'])
  const error = JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', code: 'invalid_value', message: 'bad input' } })
  const turn = async (reply: string[]): Promise<void> => {
    client.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: 'x' }))
    await server.nextMessage()
    await relayedWhole(client, server, reply)
  }
  await turn([error])
  await turn(responseEvents('resp_after_error', 'fine'))
  // Plain frames are read as they pass: both responses are counted once the client has them.
  const usage = await fetch(`${gateway.origin}/gateway/sessions/${wsSession}`).then(async (r) => await r.json() as Record<string, unknown>)
  t.match(usage, { requests: 2, input_tokens: 120, output_tokens: 7 }, 'the error is a request without tokens; the completed response has its own')
  const calls = await fetch(`${gateway.origin}/gateway/sessions/${wsSession}/requests`).then(async (r) => await r.json() as { data: Array<Record<string, unknown>> })
  t.equal(calls.data.length, 2, 'both are model calls in the session\'s records')
})

t.test('shutdown closes idle WebSockets with 1001 at once, and busy ones when their response is over', async (t) => {
  const { upstream, gateway } = await setUp(t, { SHUTDOWN_GRACE_MS: '20000' })
  const acceptedIdle = upstream.nextWebSocket()
  const idle = await openClient(t, wsURL(gateway))
  await acceptedIdle
  const acceptedBusy = upstream.nextWebSocket()
  const busy = await openClient(t, wsURL(gateway))
  const busyServer = await acceptedBusy
  busy.send(JSON.stringify({ type: 'response.create', input: 'take your time' }))
  await busyServer.nextMessage()
  const events = responseEvents('resp_shutdown', 'late but whole')
  busyServer.ws.send(events[0]!)
  await nextMessage(busy)

  const idleClosed = closedWith(idle)
  const busyClosed = closedWith(busy)
  const busyMessages: string[] = []
  busy.on('message', (data) => busyMessages.push(data.toString('utf8')))
  const closing = gateway.close()
  t.same(await idleClosed, { code: 1001, reason: 'gateway shutting down' }, 'the idle socket is closed at once')
  for (const event of events.slice(1)) busyServer.ws.send(event)
  t.same(await busyClosed, { code: 1001, reason: 'gateway shutting down' })
  t.equal(busyMessages.length, events.length - 1, 'the busy socket got its whole response first')
  t.equal(JSON.parse(busyMessages.at(-1)!).type, 'response.completed')
  t.equal(await closing, 0, 'nothing had to be cut')
  t.equal((await busyServer.closed).code, 1001, 'the upstream got a Close 1001 too')
})

// Regression: every client data message counted as awaiting an answer, so a socket whose last
// messages were a response.processed and a response.steer (which no response answers) waited
// out the whole grace period on shutdown, and was cut, instead of closing at once.
t.test('regression: shutdown during a closing handshake sends no Close of its own; the ends finish theirs', async (t) => {
  // Before, the drain sent 1001 both ways: a second Close to the upstream, which had the
  // client's already, and the upstream's echo never reached the client.
  const { upstream, gateway } = await setUp(t, { SHUTDOWN_GRACE_MS: '20000' })
  let upstreamEnd: ReturnType<typeof acceptRaw> | undefined
  const upstreamSocket = new Promise<Socket>((resolve) => upstream.handleUpgrade((req, socket, head) => {
    upstreamEnd = acceptRaw(req, socket, head)
    resolve(socket)
  }))
  const client = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': 'close-at-shutdown' })
  const server = await upstreamSocket
  const clientClose = encodeFrame({ opcode: 0x8, payload: Buffer.from([0x0f, 0xa1]), masked: true }) // 4001
  client.socket.write(clientClose)
  await upstreamEnd!.receivedAtLeast(clientClose.length)

  const closing = gateway.close()
  // The drain asks every WebSocket to close in the turn its listener closes: once a connection is refused, it has.
  await until(async () => await tryConnect(gateway.port), (result) => result === 'ECONNREFUSED', 'refused new connections')
  const echo = encodeFrame({ opcode: 0x8, payload: Buffer.from([0x0f, 0xa1]) })
  server.end(echo) // the upstream answers the client's Close and closes TCP, as a server does
  await client.closed
  t.same(client.received(), echo, 'the client got the upstream\'s Close, and no other')
  t.same(upstreamEnd!.received(), clientClose, 'the upstream got the client\'s Close, and no other')
  t.equal(await closing, 0, 'nothing had to be cut')
  t.match(await webSocketLog(gateway), { status: 101, ended_by: 'client', close_code: 4001 })
})

t.test('shutdown closes at once, with 1001, a WebSocket whose last messages were not response.create', async (t) => {
  for (const [name, deflate] of SHUTDOWN_FRAMES) {
    t.test(name, async (t) => {
      const { upstream, gateway } = await setUp(t, { SHUTDOWN_GRACE_MS: '20000' }, { perMessageDeflate: deflate })
      const accepted = upstream.nextWebSocket()
      const client = await openClient(t, wsURL(gateway), { perMessageDeflate: deflate })
      const server = await accepted
      // A whole turn first: its request answered…
      client.send(JSON.stringify({ type: 'response.create', input: 'one turn' }))
      await server.nextMessage()
      await relayedWhole(client, server, responseEvents('resp_before_shutdown', 'answered'))
      // …then messages the upstream answers with no response.
      client.send(JSON.stringify({ type: 'response.processed', response_id: 'resp_before_shutdown' }))
      client.send(JSON.stringify({ type: 'response.steer', input: 'and one more thing' }))
      t.equal(JSON.parse((await server.nextMessage()).data.toString('utf8')).type, 'response.processed')
      t.equal(JSON.parse((await server.nextMessage()).data.toString('utf8')).type, 'response.steer')

      const clientClosed = closedWith(client)
      const closing = gateway.close()
      t.same(await clientClosed, { code: 1001, reason: 'gateway shutting down' }, 'closed as idle')
      t.equal(await closing, 0, 'nothing had to be cut')
      t.equal((await server.closed).code, 1001, 'the upstream got a Close 1001 too')
      t.match(await webSocketLog(gateway), { ended_by: 'shutdown', close_code: 1001 })
    })
  }
})

// Regression: only a response.create counted as awaiting an answer, so a WebSocket whose client
// had just sent a response.append (codex's incremental request: the new input items only, in
// place of a response.create, answered by a response of its own) was closed at shutdown before
// that response came, as if idle.
t.test('shutdown waits for the response a response.append asks for, as for a response.create', async (t) => {
  for (const [name, deflate] of SHUTDOWN_FRAMES) {
    t.test(name, async (t) => {
      const { upstream, gateway } = await setUp(t, { SHUTDOWN_GRACE_MS: '20000' }, { perMessageDeflate: deflate })
      const accepted = upstream.nextWebSocket()
      const client = await openClient(t, wsURL(gateway), { perMessageDeflate: deflate })
      const server = await accepted
      client.send(JSON.stringify({ type: 'response.create', model: 'gpt-test', input: [{ role: 'user', content: 'first' }] }))
      await server.nextMessage()
      await relayedWhole(client, server, responseEvents('resp_first', 'answered'))

      // A bystander: shutdown closes every idle socket in one pass, so once it has its 1001, the
      // gateway has judged the other socket too, before its answer comes.
      const bystanderAccepted = upstream.nextWebSocket()
      const bystander = await openClient(t, wsURL(gateway))
      await bystanderAccepted
      client.send(JSON.stringify({ type: 'response.append', input: [{ role: 'user', content: 'and then' }] }))
      t.equal(JSON.parse((await server.nextMessage()).data.toString('utf8')).type, 'response.append')
      const clientClosed = closedWith(client)
      const bystanderClosed = closedWith(bystander)
      const received: string[] = []
      client.on('message', (data) => received.push(JSON.parse(data.toString('utf8')).type))
      const closing = gateway.close()
      t.equal((await bystanderClosed).code, 1001, 'the idle bystander is closed at once')
      const answer = responseEvents('resp_appended', 'the appended turn')
      for (const event of answer) server.ws.send(event)
      t.same(await clientClosed, { code: 1001, reason: 'gateway shutting down' })
      t.equal(received.length, answer.length, 'the client got the whole response it asked for before the close')
      t.equal(received.at(-1), 'response.completed')
      t.equal(await closing, 0, 'nothing had to be cut')
      t.equal((await server.closed).code, 1001)
    })
  }
})

t.test('shutdown cuts a WebSocket still busy when the grace period ends, and counts it', async (t) => {
  const { upstream, gateway } = await setUp(t, { SHUTDOWN_GRACE_MS: '300' })
  const accepted = upstream.nextWebSocket()
  const client = await openClient(t, wsURL(gateway))
  const server = await accepted
  client.send(JSON.stringify({ type: 'response.create', input: 'never answered' }))
  await server.nextMessage()
  const clientClosed = closedWith(client)
  t.equal(await gateway.close(), 1, 'one exchange cut')
  t.equal((await clientClosed).code, 1006)
  t.equal((await server.closed).code, 1006)
  t.match(await webSocketLog(gateway), { ended_by: 'shutdown' })
})

t.test('managed keys: an upgrade needs a gateway key, and the upstream gets the gateway\'s own', async (t) => {
  const { upstream, gateway } = await setUp(t, { OPENAI_API_KEY: 'sk-upstream-secret', GATEWAY_API_KEYS: 'gw-key-1' })
  const refused = await rawWebSocket(gateway.port, '/v1/responses', { Authorization: 'Bearer sk-client-own' })
  t.equal(refused.status, 401)
  await refused.closed
  t.equal(upstream.handshakes.length, 0)
  const handshake = upstream.nextHandshake()
  await openClient(t, wsURL(gateway), { headers: { authorization: 'Bearer gw-key-1' } })
  t.equal((await handshake).headers.authorization, 'Bearer sk-upstream-secret')
})

/** The body of a close-delimited or content-length response read raw. */
function bodyOf (bytes: Buffer): string {
  return bytes.toString('utf8')
}

async function postResponses (gateway: RunningGateway, body: Record<string, unknown>): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = httpRequest(`${gateway.baseURL}/responses`, {
      method: 'POST',
      agent: false, // a fresh connection: its own connection session would differ
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }
    }, (res) => {
      let received = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: received }))
    })
    req.on('error', reject)
    req.end(text)
  })
}

t.test('regression: an upgrade pipelined behind a request still streaming waits its turn, and the gateway lives on', async (t) => {
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const { upstream, gateway } = await setUp(t)
  upstream.http.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: first\n\n')
    await released
    res.end('data: last\n\n')
  })
  const accepted = upstream.nextWebSocket()
  const socket = connect(gateway.port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let received = ''
  const seen = (text: string): Promise<void> => new Promise((resolve) => {
    const check = (): void => { if (received.includes(text)) { socket.off('data', check); resolve() } }
    socket.on('data', check)
    check()
  })
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.write(
    'POST /v1/responses HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}' +
    'GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  await seen('data: first')
  t.equal(upstream.handshakes.length, 0, 'the upgrade has not gone upstream while the stream runs')
  release()
  await seen('HTTP/1.1 101 Switching Protocols')
  await accepted
  t.ok(received.indexOf('data: last') < received.indexOf('HTTP/1.1 101'), 'the streamed answer ends before the 101 starts')
  t.equal((await fetch(`${gateway.origin}/healthz`)).status, 200, 'the gateway still serves')
})
