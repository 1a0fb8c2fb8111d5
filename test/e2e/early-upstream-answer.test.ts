/**
 * An upstream that answers a request before reading its body (a 401 for a bad key on a large
 * upload): its answer is relayed, the rest of the client's body is read into nothing, and the
 * same connection serves the client's next request. Regression: for a `content-length` body
 * streamed upstream, undici destroyed the body once the answer was complete, Node stopped
 * reading the socket, and the connection hung until SERVER_REQUEST_TIMEOUT_MS sent a 408.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import tap, { type Test } from 'tap'
import { startGateway, type RunningGateway, type Teardown } from '../support/gateway.js'
import { headerOf, rawConnection, rawRequest } from '../support/raw-http.js'

/** Long enough never to fire while the test runs: without the fix, the second answer is this 408. */
const TIMEOUTS = { SERVER_HEADERS_TIMEOUT_MS: '10000', SERVER_REQUEST_TIMEOUT_MS: '20000' }
const FIRST = Buffer.alloc(64 * 1024, 0x61)
const REST = Buffer.alloc(1024 * 1024, 0x62)

/** Refuses every POST at once, body unread (as an API does a bad key); answers a GET with `{"ok":true}`. */
async function startRefusingUpstream (t: Teardown): Promise<string> {
  const server = createServer((req, res) => {
    if (req.method === 'POST') res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"invalid_api_key"}}')
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
}

/** POSTs a body in two parts, the second only once the answer is in, then a GET on the same connection. */
async function uploadThenGet (t: Test, gateway: RunningGateway, session: string, framing: 'content-length' | 'chunked'): Promise<void> {
  const connection = rawConnection(gateway.port)
  t.teardown(() => { connection.destroy() })
  const head = rawRequest('POST /v1/files HTTP/1.1', 'Host: x', 'Content-Type: application/octet-stream', `session-id: ${session}`,
    framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${FIRST.length + REST.length}`)
  const part = (bytes: Buffer): Buffer => framing === 'chunked' ? Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]) : bytes
  connection.write(Buffer.concat([Buffer.from(head, 'latin1'), part(FIRST)]))
  const refused = await connection.nextResponse()
  t.equal(refused.status, 401, `${framing}: the upstream's answer`)
  t.match(refused.body.toString(), /invalid_api_key/, `${framing}: its body, whole`)
  t.not(headerOf(refused, 'connection'), 'close', `${framing}: the connection is kept`)
  connection.write(Buffer.concat([part(REST), Buffer.from(framing === 'chunked' ? '0\r\n\r\n' : ''), Buffer.from(rawRequest('GET /v1/models HTTP/1.1', 'Host: x'))]))
  const next = await connection.nextResponse()
  t.equal(next.status, 200, `${framing}: the next request on the connection is served`)
  t.equal(next.body.toString(), '{"ok":true}', `${framing}: with the upstream's answer`)
  t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === session), { status: 401, ended_by: 'complete' })
}

tap.test('regression: an upstream that answers before reading the body leaves the connection serving the next request', async (t) => {
  const gateway = await startGateway({ UPSTREAM_URL: await startRefusingUpstream(t), ...TIMEOUTS })
  t.teardown(async () => { await gateway.close() })
  await uploadThenGet(t, gateway, 'early-length', 'content-length')
  await uploadThenGet(t, gateway, 'early-chunked', 'chunked')
})

tap.test('regression: with several upstreams, a body over the replay limit answered early leaves the connection serving', async (t) => {
  const url = await startRefusingUpstream(t)
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([{ name: 'a', url }, { name: 'b', url }]),
    // The body is over this, so it streams upstream once instead of being kept for a retry.
    UPSTREAM_REPLAY_BODY_BYTES: '1024',
    ...TIMEOUTS
  })
  t.teardown(async () => { await gateway.close() })
  await uploadThenGet(t, gateway, 'routed-length', 'content-length')
  await uploadThenGet(t, gateway, 'routed-chunked', 'chunked')
})
