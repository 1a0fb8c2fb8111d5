/**
 * The upstream's reason phrase is relayed when Node can write it, and replaced by the status's
 * usual one when it cannot. Regression: a phrase with a byte that is no UTF-8 character
 * (`HTTP/1.1 200 O\xffK`) made `writeHead` throw inside the relay, the 502 that followed threw
 * again on the phrase left behind, and the client never got an answer.
 */
import tap from 'tap'
import { startGateway } from '../support/gateway.js'
import { rawExchange, rawRequest } from '../support/raw-http.js'
import { startRawUpstream } from '../support/raw-upstream.js'

tap.test('regression: an upstream reason phrase Node cannot write is replaced by the usual one, the answer relayed', async (t) => {
  const upstream = await startRawUpstream({
    onRequest: (req, socket) => {
      const phrase = req.target.endsWith('/bad') ? Buffer.from([0x4f, 0xff, 0x4b]) : Buffer.from('Fine Thanks')
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 '), phrase, Buffer.from('\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}')]))
    }
  })
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  t.teardown(async () => { await gateway.close(); await upstream.close() })

  const bad = await rawExchange(gateway.port, rawRequest('GET /v1/files/bad HTTP/1.1', 'Host: x', 'session-id: phrase-bad', 'Connection: close'))
  t.equal(bad.response.status, 200, 'the upstream\'s status')
  t.equal(bad.response.reason, 'OK', 'Node\'s reason phrase for it')
  t.equal(bad.response.body.toString(), '{"ok":true}', 'the upstream\'s body')
  t.has(await gateway.waitForLog((l) => l.msg === 'request' && l.session === 'phrase-bad'), { status: 200, ended_by: 'complete' })

  const fine = await rawExchange(gateway.port, rawRequest('GET /v1/files/fine HTTP/1.1', 'Host: x', 'Connection: close'))
  t.equal(fine.response.reason, 'Fine Thanks', 'a phrase Node can write is relayed as it came')
})
