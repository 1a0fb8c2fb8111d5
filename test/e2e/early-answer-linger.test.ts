/**
 * A client still sending its body when the gateway answers (a refusal, an upstream it cannot
 * reach) gets that answer, not a reset: the gateway reads the body's rest into nothing before it
 * closes the connection, as nginx's lingering close does. Before, Node closed the socket as soon
 * as the answer was written, the client's bytes still coming met a closed socket, and the client
 * saw EPIPE or ECONNRESET instead of the 401, 413 or 502 (with 16 MB bodies, every time here).
 * The gateway runs as its own process (the built CLI): in the test's process, client and gateway
 * share one event loop, and the client read the answer before the reset came.
 */
import { request as httpRequest } from 'node:http'
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { startGatewayProcess } from '../support/gateway-process.js'
import { startMockUpstream } from '../support/mock-upstream.js'

/** A JSON call of `bytes` bytes, written at once, as an SDK sends a long conversation. */
function bigCall (bytes: number): Buffer {
  const head = Buffer.from('{"model":"gpt-test","input":"')
  return Buffer.concat([head, Buffer.alloc(bytes - head.length - 2, 0x78), Buffer.from('"}')])
}

interface Answer { status: number, connection: string | undefined, body: string }

/** POSTs `body` with node:http (which reads an answer while it writes) and resolves with the answer, or rejects with the socket's error. */
async function post (port: number, body: Buffer, headers: Record<string, string>, chunked = false): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/v1/responses', headers: { 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': String(body.length) }), ...headers } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const BODY = bigCall(16 * 1024 * 1024)

/** A loopback port that was just free: nothing listens there. */
async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

t.test('a client still sending gets the refusal or the 502, then the connection closes', async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const gatewayPort = async (env: Record<string, string>): Promise<number> => await startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', ...env }).port()
  const limited = await gatewayPort({ UPSTREAM_URL: upstream.url, BODY_LIMIT: String(1024 * 1024) })
  const managed = await gatewayPort({ UPSTREAM_URL: upstream.url, OPENAI_API_KEY: 'sk-upstream', GATEWAY_API_KEYS: 'gk-right' })
  const unreachable = await gatewayPort({ UPSTREAM_URL: `http://127.0.0.1:${await freePort()}/v1` })

  const cases = [
    ['a body over BODY_LIMIT', limited, {}, 413, 'body_too_large'],
    ['a wrong gateway key', managed, { authorization: 'Bearer gk-wrong' }, 401, 'invalid_api_key'],
    ['an upstream that refuses connections', unreachable, { 'session-id': 's-linger' }, 502, 'upstream_unreachable']
  ] as const
  for (const [label, port, headers, status, code] of cases) {
    for (const chunked of [false, true]) {
      const what = `${label}${chunked ? ', chunked' : ''}`
      const answer = await post(port, BODY, headers, chunked).catch((err: Error) => err)
      if (answer instanceof Error) {
        t.fail(`${what}: the client got ${answer.message} instead of its ${status}`)
        continue
      }
      t.equal(answer.status, status, `${what}: the ${status} reaches the client`)
      t.match(JSON.parse(answer.body), { error: { code } }, `${what}: with its error`)
      t.equal(answer.connection, 'close', `${what}: and the connection closes after it`)
    }
  }
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
})
