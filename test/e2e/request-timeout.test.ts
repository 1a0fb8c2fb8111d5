/**
 * SERVER_REQUEST_TIMEOUT_MS once a request's headers are in: a body that stalls gets a 408 and
 * its connection closed, whether the body was being read for its session or streamed upstream
 * (then the upstream request is aborted too), and the exchange is logged and counted once, as
 * a 408. Regression: the 408 used to wait for the in-flight response to finish, and that
 * response waited for the body, so the socket was held open for good.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import tap from 'tap'
import { request } from 'undici'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { headerOf, rawExchange, rawRequest, type RawResponse } from '../support/raw-http.js'

/** Short timeouts: Node checks them every headersTimeout / 2. */
const TIMEOUTS = { SERVER_HEADERS_TIMEOUT_MS: '1000', SERVER_REQUEST_TIMEOUT_MS: '1000' }

/** How a request reached the upstream ended: `aborted` when the gateway dropped it mid-body. */
type End = 'complete' | 'aborted'

interface WaitingUpstream {
  url: string
  /** Each request's end, in arrival order. */
  ends: Array<Promise<End>>
  /** The end of the request with this `session-id`. */
  endOf: (session: string) => Promise<End>
  /** Resolves once the request with this `session-id` has arrived: the upstream then waits for the whole body. */
  arrival: (session: string) => Promise<void>
}

/** An upstream that answers only once it has a request's whole body, as a model API does. */
async function startWaitingUpstream (t: { teardown: (fn: () => Promise<void>) => void }, answer?: (req: IncomingMessage) => string | undefined): Promise<WaitingUpstream> {
  const ends: Array<Promise<End>> = []
  /** By `session-id`: resolves with the request's end once it has arrived, asked for before or after. */
  const bySession = new Map<string, { arrived: Promise<Promise<End>>, arrive: (end: Promise<End>) => void }>()
  const slot = (session: string): { arrived: Promise<Promise<End>>, arrive: (end: Promise<End>) => void } => {
    let entry = bySession.get(session)
    if (entry === undefined) {
      let arrive!: (end: Promise<End>) => void
      const arrived = new Promise<Promise<End>>((resolve) => { arrive = resolve })
      entry = { arrived, arrive }
      bySession.set(session, entry)
    }
    return entry
  }
  const server = createServer((req, res) => {
    const end = new Promise<End>((resolve) => {
      req.on('end', () => resolve('complete'))
      req.on('aborted', () => resolve('aborted'))
    })
    ends.push(end)
    req.resume()
    const early = answer?.(req)
    if (early !== undefined) res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(early) }).end(early)
    else req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'))
    const session = req.headers['session-id']
    if (typeof session === 'string') slot(session).arrive(end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1`,
    ends,
    endOf: async (session) => await await slot(session).arrived,
    arrival: async (session) => { await slot(session).arrived }
  }
}

async function gatewayBefore (t: { teardown: (fn: () => Promise<void>) => void }, upstream: WaitingUpstream, env: Record<string, string> = {}): Promise<RunningGateway> {
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...TIMEOUTS, ...env })
  t.teardown(async () => { await gateway.close() })
  return gateway
}

/** The gateway's answer on a connection it closed itself: a 408 request_timeout, OpenAI-style. */
function assertRequestTimeout (t: Pick<typeof tap, 'equal' | 'match'>, response: RawResponse, label: string): void {
  t.equal(response.status, 408, `${label}: 408`)
  t.match(headerOf(response, 'content-type'), /^application\/json/, `${label}: JSON`)
  t.match(JSON.parse(response.body.toString()), { error: { message: String, type: 'invalid_request_error', code: 'request_timeout' } }, `${label}: OpenAI-style error`)
  t.equal(headerOf(response, 'connection'), 'close', `${label}: the connection is closed`)
}

/** requests_total for POST /v1/responses answered 4xx, by upstream label. */
async function requests4xx (gateway: RunningGateway, upstream: string): Promise<number> {
  const res = await request(`${gateway.origin}/metrics`)
  const text = await res.body.text()
  const line = text.split('\n').find((l) => l.startsWith('session_gateway_requests_total{') &&
    l.includes('route="/v1/responses"') && l.includes('method="POST"') && l.includes('status_class="4xx"') && l.includes(`upstream="${upstream}"`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

// Every test below waits out a request timeout (about a second each) with a gateway of its own:
// they run at once, and so do the cases within a test, each on its own connection and session.
tap.jobs = 4

tap.test('regression: a JSON body that stalls while it is read for its session gets a 408 and its connection closed', async (t) => {
  const upstream = await startWaitingUpstream(t)
  const gateway = await gatewayBefore(t, upstream)
  const { response } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 100'
  ) + '{"model":')
  assertRequestTimeout(t, response, 'read for its session')
  const line = await gateway.waitForLog((l) => l.msg === 'refused')
  t.has(line, { method: 'POST', path: '/v1/responses', status: 408, ended_by: 'gateway', error: 'request_timeout' })
  t.equal(await requests4xx(gateway, 'none'), 1, 'counted once, as a 4xx before any upstream was chosen')
  t.equal(upstream.ends.length, 0, 'nothing went upstream')
})

tap.test('a small body whose session a header decided is read whole first: stalled, it gets a 408 and nothing goes upstream', async (t) => {
  const upstream = await startWaitingUpstream(t)
  const gateway = await gatewayBefore(t, upstream)
  const { response } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'session-id: small-stalled', 'Content-Length: 100'
  ) + '{"model":')
  assertRequestTimeout(t, response, 'small, session from a header')
  // Its one line, either kind: a body streamed upstream instead would log `request`, and the
  // test then fails here rather than waiting for a `refused` line that never comes.
  const line = await gateway.waitForLog((l) => l.path === '/v1/responses' && (l.msg === 'refused' || l.msg === 'request'))
  t.has(line, { msg: 'refused', method: 'POST', path: '/v1/responses', status: 408, ended_by: 'gateway', error: 'request_timeout' })
  t.equal(upstream.ends.length, 0, 'nothing went upstream')

  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'session-id': 'after-small' } })
  t.equal(res.statusCode, 200, 'a following request is served')
  t.same(await res.body.json(), { ok: true })
})

tap.test('regression: a body that stalls while it streams upstream gets a 408, and the upstream request is aborted', async (t) => {
  const upstream = await startWaitingUpstream(t)
  const gateway = await gatewayBefore(t, upstream)
  const cases = [
    // a session-id: the body is not read for the session; past 64 KiB it streams as it comes
    ['content-length', ['Content-Type: application/json', 'session-id: timeout-length', 'Content-Length: 100000'], '{"model":'],
    ['chunked, not JSON', ['Content-Type: application/octet-stream', 'session-id: timeout-chunked', 'Transfer-Encoding: chunked'], '9\r\n{"model":\r\n']
  ] as const
  await Promise.all(cases.map(async ([label, head, partial]) => {
    const session = head[1].slice('session-id: '.length)
    const exchange = rawExchange(gateway.port, rawRequest('POST /v1/responses HTTP/1.1', 'Host: x', ...head) + partial)
    await upstream.arrival(session) // the attempt started: the upstream waits for the rest of the body
    const { response } = await exchange
    assertRequestTimeout(t, response, label)
    t.equal(await upstream.endOf(session), 'aborted', `${label}: the upstream request was aborted`)
    const line = await gateway.waitForLog((l) => l.msg === 'request' && l.session === session)
    t.has(line, { method: 'POST', path: '/v1/responses', status: 408, upstream: 'default', ended_by: 'gateway', error: 'request_timeout', bytes_out: 0 })
    t.equal(gateway.logs.filter((l) => l.session === session).length, 1, `${label}: one log line`)
  }))
  t.equal(await requests4xx(gateway, 'default'), 2, 'each counted once, as a 4xx of the upstream tried')

  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'session-id': 'after' } })
  t.equal(res.statusCode, 200, 'a following request is served')
  t.same(await res.body.json(), { ok: true })
})

tap.test('regression: with several upstreams, a stalled body gets a 408 whether it was kept to replay or streamed upstream', async (t) => {
  const a = await startWaitingUpstream(t)
  const b = await startWaitingUpstream(t)
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([{ name: 'a', url: a.url }, { name: 'b', url: b.url }]),
    // Bodies over 10 bytes are streamed once instead of kept for a retry.
    UPSTREAM_REPLAY_BODY_BYTES: '10',
    ...TIMEOUTS
  })
  t.teardown(async () => { await gateway.close() })
  const cases = [
    ['read for its session', ['Content-Type: application/json', 'Content-Length: 100'], '{"model":', undefined],
    ['kept to replay', ['Content-Type: application/octet-stream', 'session-id: routed-kept', 'Transfer-Encoding: chunked'], '5\r\n{"mod\r\n', undefined],
    ['streamed, content-length', ['Content-Type: application/json', 'session-id: routed-length', 'Content-Length: 100'], '{"model":', 'routed-length'],
    ['streamed, chunked', ['Content-Type: application/octet-stream', 'session-id: routed-chunked', 'Transfer-Encoding: chunked'], 'f\r\n{"model":"gpt-x\r\n', 'routed-chunked']
  ] as const
  await Promise.all(cases.map(async ([label, head, partial, session]) => {
    const { response } = await rawExchange(gateway.port, rawRequest('POST /v1/responses HTTP/1.1', 'Host: x', ...head) + partial)
    assertRequestTimeout(t, response, label)
    if (session === undefined) return
    const line = await gateway.waitForLog((l) => l.msg === 'request' && l.session === session)
    t.has(line, { status: 408, ended_by: 'gateway', error: 'request_timeout' }, `${label}: logged as a 408`)
    const tried = line.upstream === 'a' ? a : b
    t.equal(await tried.endOf(session), 'aborted', `${label}: the upstream request was aborted`)
  }))
  t.equal(gateway.logs.filter((l) => l.msg === 'refused' && l.error === 'request_timeout').length, 2, 'the two never sent upstream are refused lines')
})

tap.test('an upstream that answers before the body is complete: its answer reaches the client whole, then the connection closes', async (t) => {
  // Node times a request out only while its body is incomplete: headers already sent then
  // mean the upstream answered without the rest of the body, and that answer is kept.
  const upstream = await startWaitingUpstream(t, () => '{"early":true}')
  const gateway = await gatewayBefore(t, upstream)
  const { responses } = await rawExchange(gateway.port, rawRequest(
    'POST /v1/responses HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'session-id: early', 'Content-Length: 100000'
  ) + '{"model":')
  t.equal(responses[0]?.status, 200)
  t.equal(responses[0]?.body.toString(), '{"early":true}', 'the upstream\'s answer, whole')
  t.equal(responses.at(-1)?.status, 408, 'then the 408 for the body that never came, and the connection closed')
  t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'early'), { status: 200, ended_by: 'complete' })
})
