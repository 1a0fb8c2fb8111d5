/**
 * The lingering close has a cap (src/http/lingering-close.ts, 30 s, nginx's `lingering_time`):
 * after an early answer the gateway reads a body's rest into nothing, but a client that keeps
 * sending forever does not hold the connection forever. The client here never finishes its
 * 100 MB body: it trickles a kilobyte at a time, as a stalled or hostile one would, and keeps
 * its side open after the gateway's FIN. Slow by nature: the cap itself is waited for.
 */
import { connect } from 'node:net'
import t from 'tap'
import { startGatewayProcess } from '../support/gateway-process.js'
import { startMockUpstream } from '../support/mock-upstream.js'

/** A client's pace: one chunk this often, for as long as the connection lasts. */
const TRICKLE_MS = 200

t.test('a client that never finishes its body is cut off after the linger cap, its answer read first', { timeout: 120_000 }, async (t) => {
  const upstream = await startMockUpstream()
  t.teardown(upstream.close)
  const port = await startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, OPENAI_API_KEY: 'sk-upstream', GATEWAY_API_KEYS: 'gk-right' }).port()
  // allowHalfOpen: the client keeps sending after the gateway's FIN, as a client mid-body does.
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  let answer = ''
  let sentAfterAnswer = 0
  let ended = false
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {}) // a write after the gateway's reset fails; the close is what is awaited
  socket.setEncoding('utf8')
  socket.on('data', (text: string) => { answer += text })
  socket.on('end', () => { ended = true })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write('POST /v1/responses HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer gk-wrong\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n{"input":"')
  const chunk = Buffer.alloc(1024, 0x78)
  const trickle = setInterval(() => {
    if (socket.destroyed) return
    socket.write(chunk)
    if (answer.length > 0) sentAfterAnswer++
  }, TRICKLE_MS)
  t.teardown(() => clearInterval(trickle))
  await closed
  clearInterval(trickle)
  t.match(answer, /^HTTP\/1\.1 401 /, 'the refusal was read')
  t.match(answer, /"code":"invalid_api_key"/)
  t.match(answer, /connection: close/i, 'announced as the connection\'s last')
  t.ok(ended, 'the gateway half-closed after its answer')
  t.ok(sentAfterAnswer > 0, `the gateway went on reading after its answer (${sentAfterAnswer} chunks) until the cap closed the connection`)
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
})
