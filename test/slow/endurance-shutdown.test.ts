/**
 * Graceful shutdown under load: the built CLI, 200 streams in flight, SIGTERM. New connections
 * are refused at once, every stream already under way runs to its last byte, and the process
 * exits 0 as soon as they are done, well inside the grace period.
 * `npm test` builds first; run `npx tsc -p tsconfig.json` before running this file alone.
 */
import { once } from 'node:events'
import { connect } from 'node:net'
import t from 'tap'
import { Agent, request } from 'undici'
import { randomChunks, responseStream, startMockUpstream } from '../support/mock-upstream.js'
import { gate, sha256 } from '../support/endurance.js'
import { idleKeepAliveConnection, startGatewayProcess, tryConnect } from '../support/gateway-process.js'

const STREAMS = 200
const GRACE_MS = 30_000


t.test(`SIGTERM with ${STREAMS} streams in flight: no new connections, every stream finishes byte-complete, exit 0 once drained`, async (t) => {
  const planned = Array.from({ length: STREAMS }, (_, i) => {
    const stream = Buffer.from(responseStream(`resp_drain_${i}`, `draining ${i} — ${'ß'.repeat(i % 31)} 日本 ✓`))
    const firstEventEnd = stream.indexOf('\n\n') + 2
    return { session: `drain-${i}`, first: stream.subarray(0, firstEventEnd), rest: randomChunks(stream.subarray(firstEventEnd), i + 1, 9), sha: sha256(stream) }
  })
  const bySession = new Map(planned.map((p) => [p.session, p]))
  // The upstream sends each stream's first event, then holds the rest until the test releases it.
  const release = gate()
  const upstream = await startMockUpstream(async (req, res) => {
    const p = bySession.get(String(req.headers['session-id']))!
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
    res.write(p.first)
    await release.opened
    for (const chunk of p.rest) res.write(chunk)
    res.end()
  })
  const clients = new Agent({ connections: STREAMS })
  t.teardown(async () => { release.open(); await clients.close(); await upstream.close() })

  const gateway = startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, SHUTDOWN_GRACE_MS: String(GRACE_MS) })
  const port = await gateway.port()
  const idle = await idleKeepAliveConnection(port)
  const stoppedAccepting = once(idle, 'close')

  // Every stream under way: its head and first event are at the client.
  const streams = await Promise.all(planned.map(async (p) => {
    const res = await request(`http://127.0.0.1:${port}/v1/responses`, {
      dispatcher: clients,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'session-id': p.session },
      body: '{"stream":true}'
    })
    const body = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>
    const received: Buffer[] = []
    while (Buffer.concat(received).length < p.first.length) {
      const next = await body.next()
      if (next.done === true) throw new Error(`${p.session} ended before its first event`)
      received.push(next.value)
    }
    return { status: res.statusCode, body, received }
  }))
  t.equal(upstream.requests.length, STREAMS, `${STREAMS} upstream requests in flight`)

  const signalledAt = performance.now()
  gateway.child.kill('SIGTERM')
  await gateway.waitForLog((l) => l.msg === 'shutting down: draining in-flight requests')
  await stoppedAccepting
  t.equal(await tryConnect(port), 'ECONNREFUSED', 'a new connection is refused once shutdown has begun')
  t.equal(gateway.child.exitCode, null, 'still running while the streams are in flight')

  release.open()
  const finished = await Promise.all(streams.map(async (s) => {
    for (let next = await s.body.next(); next.done !== true; next = await s.body.next()) s.received.push(next.value)
    return sha256(Buffer.concat(s.received))
  }))
  t.ok(streams.every((s) => s.status === 200), 'every stream was answered 200')
  const broken = finished.filter((sha, i) => sha !== planned[i]!.sha).length
  t.equal(broken, 0, `all ${STREAMS} streams finished byte-complete (sha256), ended cleanly`)

  t.same(await gateway.exited, { code: 0, signal: null }, 'exit 0')
  const tookMs = performance.now() - signalledAt
  t.ok(tookMs < GRACE_MS, `it exited once drained (${Math.round(tookMs)} ms), inside the ${GRACE_MS} ms grace period`)
  t.match(await gateway.waitForLog((l) => l.msg === 'shut down'), { cut: 0 }, 'nothing had to be cut')
  await Promise.all(upstream.requests.map(async (r) => await r.closed))
  t.equal(upstream.requests.filter((r) => r.abortedByPeer()).length, 0, 'no upstream response was cut short')
})

/** One request on a connection of its own: the status it got, or the error that ended it. */
async function lateRequest (port: number, session: string): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let connected = false
    socket.on('connect', () => {
      connected = true
      socket.write(`POST /v1/responses HTTP/1.1\r\nHost: x\r\nsession-id: ${session}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`)
    })
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(connected ? `after connect: ${err.code ?? err.message}` : `at connect: ${err.code ?? err.message}`))
    socket.on('close', () => {
      const head = Buffer.concat(chunks).toString('latin1')
      resolve(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? (connected ? 'closed without an answer' : 'at connect: closed'))
    })
  })
}

t.test('regression: requests that reach the gateway around SIGTERM are served, never reset; later ones are refused at connect', async (t) => {
  const release = gate()
  const upstream = await startMockUpstream(async (req, res) => {
    const session = String(req.headers['session-id'])
    if (session.startsWith('late-')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
    res.write('event: response.created\ndata: {}\n\n')
    await release.opened
    res.end('event: response.completed\ndata: {}\n\n')
  })
  const clients = new Agent({ connections: STREAMS })
  t.teardown(async () => { release.open(); await clients.close(); await upstream.close() })
  const gateway = startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, SHUTDOWN_GRACE_MS: String(GRACE_MS) })
  const port = await gateway.port()

  const streams = await Promise.all(Array.from({ length: STREAMS }, async (_, i) => {
    const res = await request(`http://127.0.0.1:${port}/v1/responses`, { dispatcher: clients, method: 'POST', headers: { 'session-id': `held-${i}` }, body: '{}' })
    return res
  }))
  // 200 more, on fresh connections, spread over the 100 ms around the signal.
  const late: Array<Promise<string>> = []
  for (let i = 0; i < STREAMS; i++) {
    if (i === STREAMS / 2) gateway.child.kill('SIGTERM')
    late.push(lateRequest(port, `late-${i}`))
    await new Promise((resolve) => setTimeout(resolve, 100 / STREAMS))
  }
  const outcomes = await Promise.all(late)
  release.open()
  await Promise.all(streams.map(async (res) => await res.body.text()))
  const tally = new Map<string, number>()
  for (const outcome of outcomes) tally.set(outcome, (tally.get(outcome) ?? 0) + 1)
  t.comment(`late requests: ${JSON.stringify(Object.fromEntries(tally))}`)
  const bad = outcomes.filter((o) => o !== '200' && o !== 'at connect: ECONNREFUSED')
  t.same(bad, [], 'every late request was served (200) or refused at connect; none reset, none 503')
  t.ok((tally.get('200') ?? 0) >= STREAMS / 2, 'at least every request sent before the signal was served')
  t.same(await gateway.exited, { code: 0, signal: null }, 'exit 0')
})
