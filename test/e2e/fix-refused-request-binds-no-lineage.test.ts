/**
 * A request's lineage keys (previous_response_id, conversation, prompt_cache_key) were bound to
 * its session before the upstream answered. In pass-through mode the upstream is what checks the
 * client's key, so a request with a key it refused still bound them: anyone who could reach the
 * gateway could fill the session store, and claim a response id before it existed, so that the
 * request that later named it joined the refused request's session. Now only a served request
 * (2xx) binds its lineage.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { replyJson } from '../support/mock-upstream.js'
import { postResponse } from '../support/responses-client.js'

const REFUSED_KEY = 'Bearer sk-refused'

t.test('a request the upstream refused binds none of its lineage; a served one does', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const answered: string[] = []
  upstream.handle((req, res, raw) => {
    if (req.headers.authorization === REFUSED_KEY) {
      return replyJson({ error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } }, 401)(req, res, raw)
    }
    answered.push(`resp_${answered.length + 1}`)
    return replyJson({ id: answered.at(-1), object: 'response', status: 'completed', output: [] })(req, res, raw)
  })
  const body = { model: 'gpt-5', input: 'hi', previous_response_id: 'resp_named_first' }

  const refused = await postResponse(gateway, upstream, answered, body, { headers: { authorization: REFUSED_KEY } })
  t.equal(refused.status, 401, 'the upstream refused the key')
  t.equal(refused.source, 'connection', 'an id nobody made: its own connection\'s session')

  const served = await postResponse(gateway, upstream, answered, body, { headers: { authorization: 'Bearer sk-good' } })
  t.equal(served.status, 200)
  t.not(served.session, refused.session, 'the refused request claimed nothing: before, this joined its session')
  t.equal(served.source, 'connection')

  const again = await postResponse(gateway, upstream, answered, body, { headers: { authorization: 'Bearer sk-good' } })
  t.equal(again.session, served.session, 'the served request bound it: the next one finds its session')
  t.equal(again.source, 'previous_response')
})

t.test('a call with no response observer (input_tokens) binds its lineage when it ends served', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const answered: string[] = []
  upstream.handle((req, res, raw) => {
    if (req.url.endsWith('/input_tokens')) return replyJson({ object: 'response.input_tokens', input_tokens: 12 })(req, res, raw)
    answered.push(`resp_${answered.length + 1}`)
    return replyJson({ id: answered.at(-1), object: 'response', status: 'completed', output: [] })(req, res, raw)
  })
  const counted = await request(`${gateway.baseURL}/responses/input_tokens`, {
    method: 'POST',
    dispatcher: new Agent({ connections: 1 }),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-5', input: 'hi', previous_response_id: 'resp_counted' })
  })
  t.equal(counted.statusCode, 200)
  await counted.body.text()
  const line = await gateway.waitForLog((l) => l.msg === 'request' && l.path === '/v1/responses/input_tokens')
  const next = await postResponse(gateway, upstream, answered, { model: 'gpt-5', input: 'hi', previous_response_id: 'resp_counted' })
  t.equal(next.session, line.session, 'bound when it ended: the next request naming it finds its session')
  t.equal(next.source, 'previous_response')
})
