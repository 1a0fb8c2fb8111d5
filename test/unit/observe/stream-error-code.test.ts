import t from 'tap'
import { streamErrorCode } from '../../../src/observe/responses-api.js'

t.test("an upstream's in-stream error is known by its code alone", async (t) => {
  t.equal(streamErrorCode({ type: 'error', code: 'rate_limit_exceeded', message: 'slow down', param: null }), 'rate_limit_exceeded', "a Responses stream's error event")
  t.equal(streamErrorCode({ type: 'error', error: { type: 'invalid_request_error', code: 'context_length_exceeded', message: 'too long' } }), 'context_length_exceeded', 'its code nested under error')
  t.equal(streamErrorCode({ error: { message: 'boom', type: 'BadRequestError', param: null, code: 400 } }), 'BadRequestError', "a chat chunk's error with a numeric code (vLLM): its type")
  t.equal(streamErrorCode({ type: 'error', message: 'no code here' }), 'error', 'no code: `error`, never the message')
  t.equal(streamErrorCode({ type: 'error', code: 'has spaces: and the request text' }), 'error', 'a code that is no identifier is not kept')
  t.equal(streamErrorCode({ type: 'error', code: 'x'.repeat(65) }), 'error', 'nor a long one')
  t.equal(streamErrorCode(undefined), 'error', 'an event too long to copy, or no JSON')
  t.equal(streamErrorCode('rate_limit_exceeded'), 'error', 'a bare string is no event')
})
