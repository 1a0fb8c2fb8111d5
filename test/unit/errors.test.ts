import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { errors } from '../../src/errors.js'

t.test('a gateway error writes its own reason phrase, not one a failed relay left on the response', async (t) => {
  const res = new ServerResponse(new IncomingMessage(new Socket()))
  // What a relay's writeHead leaves behind when Node refused the upstream's phrase.
  res.statusMessage = 'O\uFFFDK'
  const error = errors.upstreamFailed('a test')
  t.doesNotThrow(() => { error.send(res) })
  t.equal(res.statusCode, 502)
  t.equal(res.statusMessage, 'Bad Gateway')
})
