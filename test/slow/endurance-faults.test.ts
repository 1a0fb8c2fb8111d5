/**
 * Faults the gateway must ride out, one at a time: for each, what the client sees, that the
 * upstream work is cancelled, that nothing is left behind, and that the gateway goes on serving
 * others (concurrently or right after). Single faults already covered elsewhere
 * (test/failures.test.ts, test/logging.test.ts) are not repeated; here are their harder cousins.
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { setTimeout as pause } from 'node:timers/promises'
import t from 'tap'
import { Agent, request } from 'undici'
import { randomChunks, replySse, responseStream, type MockUpstream, type RecordedRequest } from '../support/mock-upstream.js'
import { startGateway, startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'
import { activeStreams, forceGc, gate, metricValue, readHead, trackSockets } from '../support/endurance.js'
import { jsonAnswer, startRawUpstream } from '../support/raw-upstream.js'

type Assert = Pick<typeof t, 'equal' | 'ok'>
type StageAssert = Pick<typeof t, 'ok' | 'notOk' | 'match'>

/** A failed test's gateway is closed at teardown without waiting out the default 30 s grace. */
const FAST_CLOSE = { SHUTDOWN_GRACE_MS: '1000' }

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }

/** A complete stream with multi-byte text, as an ordinary request gets it. */
const ORDINARY = Buffer.from(responseStream('resp_ordinary', 'ordinary — 日本語 ✓'))

/**
 * Makes `upstream` answer by the request's `session-id`: a handler from `special` when there is
 * one for it, else the ORDINARY stream in random pieces. Returns, per session, the request as
 * the upstream received it.
 */
function answerBySession (upstream: MockUpstream, special: Record<string, (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>>): (session: string) => Promise<RecordedRequest> {
  const arrived = new Map<string, ReturnType<typeof gate> & { req?: RecordedRequest }>()
  const arrival = (session: string): ReturnType<typeof gate> & { req?: RecordedRequest } => {
    let entry = arrived.get(session)
    if (entry === undefined) arrived.set(session, entry = gate())
    return entry
  }
  upstream.handle(async (req, res, raw) => {
    const session = String(req.headers['session-id'])
    const entry = arrival(session)
    entry.req = req
    entry.open()
    const handler = special[session] ?? replySse(randomChunks(ORDINARY, session.length + 7, 13))
    await handler(req, res, raw)
  })
  return async (session) => {
    const entry = arrival(session)
    await entry.opened
    return entry.req!
  }
}

/** An ordinary streamed request, on its own connection: it must come back whole. */
async function ordinaryRequest (t: Assert, gateway: RunningGateway, session: string, what: string): Promise<void> {
  const agent = new Agent({ connections: 1 })
  try {
    const res = await request(`${gateway.baseURL}/responses`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'session-id': session },
      body: '{"stream":true}'
    })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.statusCode, 200, `${what}: status 200`)
    t.ok(body.equals(ORDINARY), `${what}: the whole stream, byte for byte`)
  } finally {
    await agent.close()
  }
}

/** A raw connection to the gateway; errors are expected (the tests tear these down). */
function rawConnection (gateway: RunningGateway): Socket {
  const socket = connect(gateway.port, '127.0.0.1')
  socket.on('error', () => {})
  return socket
}

// Regression: the relay's writeHead sent nothing until the first body byte, so a client waited
// for a head the upstream had long sent. (The timeout only bounds that failure: the head comes at once.)
t.test('an upstream that sends its headers and then stalls: the client gets the head at once, its leaving cancels the upstream, others are served meanwhile', { timeout: 20_000 }, async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, FAST_CLOSE) // idle timeout: the 10 min default
  const requestFor = answerBySession(upstream, {
    stalled: (_req, res) => {
      res.writeHead(200, SSE_HEADERS)
      res.flushHeaders() // …and never a byte of body
    }
  })
  const client = rawConnection(gateway)
  client.write('POST /v1/responses HTTP/1.1\r\nHost: gw\r\nsession-id: stalled\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"stream":true}')
  const head = await readHead(client)
  t.equal(head.status, 200, 'the client got the upstream\'s headers')
  const stalled = await requestFor('stalled')

  await ordinaryRequest(t, gateway, 'meanwhile', 'a request made while the other stalls')
  t.equal(await activeStreams(gateway.origin), 1, 'the stalled exchange is the only one in flight')

  client.destroy()
  await stalled.closed
  t.ok(stalled.abortedByPeer(), 'the upstream saw its request closed')
  t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'stalled'), { ended_by: 'client', status: 200, bytes_out: 0 })
  t.equal(await activeStreams(gateway.origin), 0, 'nothing in flight')
})

t.test('an upstream that answers with a malformed status line: 502 upstream_failed, and the next request is served', async (t) => {
  const upstream = await startRawUpstream({
    onRequest: (req, socket) => {
      if (req.body.toString().includes('garbage')) socket.end('HTCPCP/1.0 I\'m a teapot, not HTTP\r\n\r\n')
      else socket.write(jsonAnswer({ ok: true }))
    }
  })
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  t.teardown(async () => { await gateway.close(); await upstream.close() })

  const bad = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"input":"garbage"}', headers: { 'content-type': 'application/json', 'session-id': 'malformed' } })
  t.equal(bad.statusCode, 502)
  t.match(bad.headers['content-type'], /^application\/json/)
  t.match(await bad.body.json(), { error: { type: 'upstream_error', code: 'upstream_failed', message: /malformed/ } })
  // Regression: undici's parser error carries no HPE_ code, so it was counted as a reset.
  t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'malformed'), { ended_by: 'upstream', status: 502, error: 'HTTPParserError' })
  t.equal(await metricValue(gateway.origin, 'session_gateway_upstream_errors_total{kind="protocol",upstream="default"}'), 1, 'counted as a protocol error')
  t.equal(await metricValue(gateway.origin, 'session_gateway_upstream_errors_total{kind="reset",upstream="default"}'), 0, 'not as a reset')

  const good = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"input":"fine"}', headers: { 'content-type': 'application/json' } })
  t.equal(good.statusCode, 200, 'the next request is served')
  t.same(await good.body.json(), { ok: true })
  t.equal(await activeStreams(gateway.origin), 0, 'nothing in flight')
})

t.test('an upstream that drops a keep-alive connection just as the gateway reuses it', async (t) => {
  /**
   * Each case: request 1 is answered on a keep-alive connection; request 2 goes out on that same
   * connection, and the upstream drops it — at its first bytes, or after reading all of it
   * (the upstream did the work, the answer is lost). A POST must never be processed twice.
   */
  const cases = [
    { method: 'POST', drop: 'first bytes' },
    { method: 'POST', drop: 'whole request read' },
    { method: 'GET', drop: 'first bytes' },
    { method: 'GET', drop: 'whole request read' }
  ] as const
  for (const { method, drop } of cases) {
    t.test(`${method}, dropped at its ${drop}`, async (t) => {
      const upstream = await startRawUpstream({
        onRequestStart: ({ index }) => index === 1 && drop === 'first bytes' ? 'destroy' : undefined,
        onRequest: (req, socket) => {
          if (req.index === 1) socket.destroy() // read in full, never answered
          else socket.write(jsonAnswer({ answered: req.target, body: req.body.toString() }))
        }
      })
      const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
      t.teardown(async () => { await gateway.close(); await upstream.close() })
      const send = async (n: number): Promise<{ status: number, json: unknown }> => {
        const res = await request(`${gateway.baseURL}/responses${method === 'GET' ? `/resp_${n}` : ''}`, {
          method,
          headers: { 'content-type': 'application/json', 'session-id': `keepalive-${n}` },
          ...(method === 'POST' ? { body: JSON.stringify({ input: `request ${n}` }) } : {})
        })
        return { status: res.statusCode, json: await res.body.json() }
      }

      t.equal((await send(1)).status, 200, 'request 1 is answered')
      const second = await send(2)
      t.equal(upstream.connections(), 1, 'request 2 went out on request 1\'s connection')
      t.equal(second.status, 502, 'the client gets a 502…')
      t.match(second.json, { error: { type: 'upstream_error', code: 'upstream_failed' } }, '…as JSON, upstream_failed')
      // undici's Agent (no retry interceptor) replays nothing, idempotent or not.
      const receipts = upstream.requests.filter((r) => r.headers['session-id'] === 'keepalive-2').length
      t.equal(receipts, drop === 'first bytes' ? 0 : 1, `the upstream received request 2 in full ${drop === 'first bytes' ? 'never' : 'once'}: it was not sent again`)

      const third = await send(3)
      t.equal(third.status, 200, 'the next request is served, on a new connection')
      t.equal(upstream.connections(), 2)
      t.equal(await activeStreams(gateway.origin), 0, 'nothing in flight')
    })
  }
})

/** The most the kernel may buffer on one loopback TCP connection, send and receive side (Linux sysctls). */
function socketBufferMax (): number {
  const max = (file: string): number => Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2])
  return max('/proc/sys/net/ipv4/tcp_rmem') + max('/proc/sys/net/ipv4/tcp_wmem')
}

t.test('a client that reads nothing pauses the upstream: the gateway holds nothing of it, and every byte arrives once it reads', async (t) => {
  const TOTAL = 200 * 1024 * 1024
  const CHUNK = 64 * 1024
  const chunkAt = (i: number): Buffer => {
    const chunk = Buffer.allocUnsafe(CHUNK).fill(i % 251)
    chunk.writeUInt32BE(i, 0)
    return chunk
  }
  let written = 0
  let drains = 0
  let waitingForDrain = false
  const blocked = gate()
  const sent = createHash('sha256')
  const { upstream, gateway } = await startGatewayWithUpstream(t, FAST_CLOSE)
  const requestFor = answerBySession(upstream, {
    // Writes as fast as its socket takes it: a 64 KiB chunk, and when write() says "full", waits for 'drain'.
    'slow-reader': async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) })
      for (let i = 0; written < TOTAL && !res.destroyed; i++) {
        const chunk = chunkAt(i)
        sent.update(chunk)
        written += chunk.length
        if (res.write(chunk)) continue
        waitingForDrain = true
        blocked.open()
        await new Promise<void>((resolve) => {
          const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
          res.on('drain', done)
          res.on('close', done)
        })
        waitingForDrain = false
        drains++
      }
      res.end()
    }
  })
  const others = new Agent({ connections: 1 })
  t.teardown(async () => { await others.close() })
  forceGc()
  const buffersBefore = process.memoryUsage().arrayBuffers

  const client = rawConnection(gateway)
  client.pause() // reads nothing at all, not even the response head
  client.write('GET /v1/files/big/content HTTP/1.1\r\nHost: gw\r\nsession-id: slow-reader\r\n\r\n')
  await blocked.opened
  // Bytes move on until every buffer between the upstream and the client is full. Serving other
  // requests turns the gateway's event loop; the upstream is paused for good once a whole round
  // of them goes by while it still waits for 'drain'. (Bounded: 50 rounds.)
  const ROUND = 5
  let rounds = 0
  let paused = false
  let othersServed = 0
  while (!paused && rounds++ < 50) {
    const drainsBefore = drains
    for (let i = 0; i < ROUND; i++) {
      const res = await request(`${gateway.baseURL}/responses`, { dispatcher: others, method: 'POST', body: '{"stream":true}', headers: { 'session-id': `beside-slow-reader-${rounds}` } })
      const body = Buffer.from(await res.body.arrayBuffer())
      if (res.statusCode === 200 && body.equals(ORDINARY)) othersServed++
    }
    paused = waitingForDrain && drains === drainsBefore
  }
  t.ok(paused, `the upstream is paused: write() returned false and no 'drain' came through a round of ${ROUND} other requests (${rounds} round(s))`)
  t.equal(othersServed, rounds * ROUND, 'the other requests were served in full meanwhile')
  // The kernel's socket buffers on the way (upstream→gateway, gateway→client) are all that may hold bytes.
  const kernelMax = 2 * socketBufferMax()
  t.ok(kernelMax < TOTAL, `(the test means something: ${kernelMax} bytes of socket buffers < ${TOTAL})`)
  t.ok(written <= kernelMax + 4 * CHUNK, `the upstream got ${written} of ${TOTAL} bytes out: no more than socket buffers hold`)
  forceGc()
  const held = process.memoryUsage().arrayBuffers - buffersBefore
  t.ok(held < 4 * 1024 * 1024, `the gateway's buffers grew by ${held} bytes while ${written} were in between: it holds nothing of the stream`)
  t.equal(await activeStreams(gateway.origin), 1, 'the paused exchange is still in flight')

  client.resume()
  const head = await readHead(client)
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], String(TOTAL))
  const received = createHash('sha256').update(head.rest)
  let bytes = head.rest.length
  await new Promise<void>((resolve, reject) => {
    const onClose = (): void => reject(new Error(`the connection closed after ${bytes} of ${TOTAL} bytes`))
    client.on('data', (chunk: Buffer) => {
      received.update(chunk)
      bytes += chunk.length
      if (bytes < TOTAL) return
      client.off('close', onClose)
      resolve()
    })
    client.once('close', onClose)
    client.resume()
  })
  t.equal(bytes, TOTAL, 'every byte arrived once the client read')
  t.equal(received.digest('hex'), sent.digest('hex'), 'and intact (sha256)')
  t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'slow-reader'), { ended_by: 'complete', status: 200, bytes_out: TOTAL })
  const seen = await requestFor('slow-reader')
  await seen.closed
  t.notOk(seen.abortedByPeer(), 'the upstream finished its response')
  client.destroy()
})

t.test('a client that leaves at any stage: the upstream work it started is cancelled, nothing is left, the next request is served', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, FAST_CLOSE) // no short timeouts: only the client ends these
  const stream = Buffer.from(responseStream('resp_stages', 'stages — ünïcödé ✓'))
  const firstEvent = stream.subarray(0, stream.indexOf('\n\n') + 2)
  const requestFor = answerBySession(upstream, {
    'stage-waiting': () => {}, // never answers
    'stage-mid-body': (_req, res) => {
      res.writeHead(200, SSE_HEADERS)
      res.write(firstEvent) // …and never ends
    },
    'stage-after-last-byte': replySse(randomChunks(stream, 5, 11))
  })
  // Upstream requests as they begin, before their body has arrived (the mock records them at its end).
  const begun = new Map<string, IncomingMessage>()
  const beginnings = new Map<string, ReturnType<typeof gate>>()
  const beginning = (session: string): ReturnType<typeof gate> => {
    let entry = beginnings.get(session)
    if (entry === undefined) beginnings.set(session, entry = gate())
    return entry
  }
  upstream.server.on('request', (raw: IncomingMessage) => {
    const session = String(raw.headers['session-id'])
    begun.set(session, raw)
    beginning(session).open()
  })
  const sockets = trackSockets(gateway.gateway.server)

  interface Stage {
    name: string
    /** The session the request names; '' when it names none (so its JSON body is read for one). */
    session: string
    /** Whether the request got far enough to go upstream. */
    wentUpstream: boolean
    /** Whether it gets a log line: any request whose head was read whole does (default: wentUpstream). */
    logged?: boolean
    /** Sends (part of) a request on `client` and returns once the stage is reached. */
    reach: (client: Socket) => Promise<void>
    /** Once the client has left: what the upstream and the log show. */
    check?: (t: StageAssert) => Promise<void>
  }
  const head = (session: string, extra: string): string =>
    `POST /v1/responses HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\n${session === '' ? '' : `session-id: ${session}\r\n`}${extra}\r\n`
  const readUntil = async (client: Socket, done: (text: string) => boolean): Promise<void> => {
    let seen = (await readHead(client)).rest.toString('latin1')
    client.on('data', (chunk: Buffer) => { seen += chunk.toString('latin1') })
    client.resume()
    while (!done(seen)) await once(client, 'data')
  }
  const stages: Stage[] = [
    {
      name: 'before its request head was complete',
      session: 'stage-head',
      wentUpstream: false,
      reach: async (client) => { client.write(head('stage-head', 'content-length: 2\r\n').slice(0, 60)) }
    },
    {
      name: 'while uploading a body that is streamed upstream as it comes',
      session: 'stage-upload',
      wentUpstream: true,
      reach: async (client) => {
        client.write(head('stage-upload', 'transfer-encoding: chunked\r\n') + '10\r\n{"stream":true, \r\n')
        await beginning('stage-upload').opened // its head is upstream, its body still coming
      },
      check: async (t) => {
        const raw = begun.get('stage-upload')!
        if (!raw.destroyed) await new Promise((resolve) => raw.once('close', resolve)) // (it emits 'error' too: aborted)
        t.notOk(raw.complete, 'the upstream request was cut before its body ended')
        t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'stage-upload'), { ended_by: 'client', status: 0 })
      }
    },
    {
      name: 'while uploading a body the gateway reads for its session',
      session: '',
      wentUpstream: false,
      logged: true,
      // No session header: the JSON body is read for previous_response_id before anything goes upstream.
      reach: async (client) => { client.write(head('', 'transfer-encoding: chunked\r\n') + '1a\r\n{"previous_response_id":"r\r\n') },
      check: async (t) => {
        // No session was decided: its line has none, and says the client ended it before any answer.
        t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.ended_by === 'client' && l.session === undefined), { status: 0, ended_by: 'client' })
      }
    },
    {
      name: 'while waiting for the upstream\'s response head',
      session: 'stage-waiting',
      wentUpstream: true,
      reach: async (client) => {
        client.write(head('stage-waiting', 'content-length: 15\r\n') + '{"stream":true}')
        await requestFor('stage-waiting')
      },
      check: async (t) => {
        const seen = await requestFor('stage-waiting')
        await seen.closed
        t.ok(seen.abortedByPeer(), 'the upstream request was cancelled')
        t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'stage-waiting'), { ended_by: 'client', status: 0 })
      }
    },
    {
      name: 'mid-body, after the response head and a first event',
      session: 'stage-mid-body',
      wentUpstream: true,
      reach: async (client) => {
        client.write(head('stage-mid-body', 'content-length: 15\r\n') + '{"stream":true}')
        await readUntil(client, (seen) => seen.includes('\n\n'))
      },
      check: async (t) => {
        const seen = await requestFor('stage-mid-body')
        await seen.closed
        t.ok(seen.abortedByPeer(), 'the upstream request was cancelled')
        t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'stage-mid-body'), { ended_by: 'client', status: 200, bytes_out: firstEvent.length })
      }
    },
    {
      name: 'right after the last byte',
      session: 'stage-after-last-byte',
      wentUpstream: true,
      reach: async (client) => {
        client.write(head('stage-after-last-byte', 'content-length: 15\r\n') + '{"stream":true}')
        await readUntil(client, (seen) => seen.endsWith('\r\n0\r\n\r\n'))
      },
      check: async (t) => {
        const seen = await requestFor('stage-after-last-byte')
        await seen.closed
        t.notOk(seen.abortedByPeer(), 'the upstream had finished: nothing to cancel')
        t.match(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'stage-after-last-byte'), { ended_by: 'complete', status: 200, bytes_out: stream.length })
      }
    }
  ]

  for (const [i, stage] of stages.entries()) {
    t.test(`a client that leaves ${stage.name}`, async (t) => {
      const begunBefore = new Set(begun.keys())
      const logsBefore = gateway.logs.length
      const client = rawConnection(gateway)
      await once(client, 'connect')
      await stage.reach(client)
      client.destroy()
      await sockets.allClosed()
      await stage.check?.(t)
      t.equal(await activeStreams(gateway.origin), 0, 'nothing in flight')

      const next = `after-stage-${i}`
      await ordinaryRequest(t, gateway, next, 'the next request')
      const reachedUpstream = [...begun.keys()].filter((s) => !begunBefore.has(s) && s !== next)
      t.same(reachedUpstream, stage.wentUpstream ? [stage.session] : [], stage.wentUpstream ? 'it alone went upstream' : 'nothing went upstream')
      const logged = gateway.logs.slice(logsBefore).filter((l) => l.session !== next).map((l) => l.msg)
      t.same(logged, (stage.logged ?? stage.wentUpstream) ? ['request'] : [], (stage.logged ?? stage.wentUpstream) ? 'one log line for it' : 'no log line: its request head never arrived whole')
      t.same(gateway.logs.filter((l) => l.level !== 'info'), [], 'nothing logged above info (no internal error)')
      await sockets.allClosed()
      t.equal(await sockets.open(), 0, 'the gateway holds no connection')
    })
  }
})

t.test('slowloris: a request head trickled past SERVER_HEADERS_TIMEOUT_MS gets a 408 and the connection closed, while others are served', async (t) => {
  // Regression: Node checks headersTimeout only every connectionsCheckingInterval (30 s by
  // default), so a 1 s SERVER_HEADERS_TIMEOUT_MS let this request through after 6 s.
  const { upstream, gateway } = await startGatewayWithUpstream(t, { ...FAST_CLOSE, SERVER_HEADERS_TIMEOUT_MS: '1000' })
  answerBySession(upstream, {})
  const slow = 'POST /v1/responses HTTP/1.1\r\nHost: gw\r\nsession-id: slowloris\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'
  const BYTE_GAP_MS = 50 // the whole head takes over 6 s: six times the timeout
  const client = rawConnection(gateway)
  const answer: Buffer[] = []
  client.on('data', (chunk: Buffer) => answer.push(chunk))
  // (not events.once: writing the next byte after the gateway closed may end in an 'error' first)
  const closed = new Promise((resolve) => client.once('close', resolve))
  let sent = 0
  const trickle = (async () => {
    await once(client, 'connect')
    for (const byte of slow) {
      if (client.destroyed || client.writableEnded) return
      client.write(byte)
      sent++
      await pause(BYTE_GAP_MS)
    }
  })()

  await ordinaryRequest(t, gateway, 'beside-slowloris', 'a request made while the slow one trickles')
  await closed
  await trickle
  const text = Buffer.concat(answer).toString('latin1')
  t.match(text, /^HTTP\/1\.1 408 /, 'the slow client got a 408')
  t.match(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), { error: { code: 'request_timeout', type: 'invalid_request_error' } })
  t.ok(sent < slow.length, `the connection was closed before the head was complete (${sent} of ${slow.length} bytes sent)`)
  t.notOk(upstream.requests.some((r) => r.headers['session-id'] === 'slowloris'), 'nothing went upstream')
  await ordinaryRequest(t, gateway, 'after-slowloris', 'a request after it')
})
