/**
 * A client that pipelines a second request behind a streaming one, then leaves: both upstream
 * requests are cancelled and both exchanges end. Regression: Node never emits 'close' on a
 * response queued behind an earlier one, so the second's relay went on writing into it until
 * backpressure paused its upstream request, which was then held for good (no log line, the
 * active_streams gauge stuck at 1, shutdown waiting out its grace period).
 */
import { connect } from 'node:net'
import tap from 'tap'
import { received, sseEvent } from '../support/mock-upstream.js'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { rawRequest } from '../support/raw-http.js'

const firstEvent = sseEvent({ type: 'response.created', sequence_number: 0 })

tap.test('regression: a client that leaves with a request pipelined behind a stream cancels both upstream requests', async (t) => {
  // Each answer starts and is then held open: only the gateway can end it.
  const { upstream, gateway } = await startGatewayWithUpstream(t, {}, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
    res.write(firstEvent)
  })
  const client = connect(gateway.port, '127.0.0.1')
  t.teardown(() => { client.destroy() })
  const post = (session: string): string => rawRequest('POST /v1/responses HTTP/1.1', 'Host: x', 'Content-Type: application/json',
    `session-id: ${session}`, 'Content-Length: 15') + '{"stream":true}'
  const firstBytes = new Promise<void>((resolve) => client.once('data', () => resolve()))
  client.write(post('pipelined-first') + post('pipelined-second'))
  const first = await received(upstream, (r) => r.headers['session-id'] === 'pipelined-first')
  const second = await received(upstream, (r) => r.headers['session-id'] === 'pipelined-second')
  await firstBytes // the first answer is flowing; the second waits behind it
  client.destroy()

  await Promise.all([first.closed, second.closed])
  t.ok(first.abortedByPeer(), 'the first upstream request was cancelled')
  t.ok(second.abortedByPeer(), 'the queued one too')
  t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'pipelined-first'), { status: 200, ended_by: 'client' })
  t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'pipelined-second'),
    { status: 0, ended_by: 'client' }, 'the queued one is logged as never answered')
  const metrics = await (await fetch(`${gateway.origin}/metrics`)).text()
  t.match(metrics, /^session_gateway_active_streams\{transport="http"\} 0$/m, 'no stream is left counted as active')
})
