/**
 * Regression: one busy session could empty the in-memory store of everyone else. Each response
 * it produces is bound to it (for a later previous_response_id), and a session was held to a
 * quarter of SESSION_MAX_BYTES but not of SESSION_MAX_ENTRIES: once its own response ids
 * reached the count bound, every other session was evicted, one per request, bindings and
 * usage alike (a service sending one fixed `session-id`, with the byte budget raised or the
 * count lowered). Now a session holds at most a quarter of the entries too, giving up its own
 * oldest keys past that, as it does past its share of the bytes.
 */
import t from 'tap'
import { request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { answerWithNewResponses, postResponse } from '../support/responses-client.js'

t.test('regression: a session past a quarter of SESSION_MAX_ENTRIES gives up its own oldest bindings, not other sessions', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, { SESSION_MAX_ENTRIES: '40' })
  const answered = answerWithNewResponses(upstream)
  const post = async (body: unknown, headers: Record<string, string> = {}): ReturnType<typeof postResponse> =>
    await postResponse(gateway, upstream, answered, body, { headers })
  const usage = async (id: string): Promise<{ status: number, requests?: number }> => {
    const res = await request(`${gateway.origin}/gateway/sessions/${id}`)
    return { status: res.statusCode, ...(await res.body.json() as { requests?: number }) }
  }

  const other = await post({ model: 'gpt-5', input: 'one call' }, { 'session-id': 'quiet-run' })
  for (let i = 0; i < 60; i++) await post({ model: 'gpt-5', input: `call ${i}` }, { 'session-id': 'busy-service' })

  t.match(await usage('quiet-run'), { status: 200, requests: 1 }, "the quiet session's usage is still there")
  const continued = await post({ model: 'gpt-5', previous_response_id: other.responseId })
  t.equal(continued.session, 'quiet-run', "and its response still finds it")
  t.equal(continued.source, 'previous_response')

  t.match(await usage('busy-service'), { status: 200, requests: 60 }, "the busy session's usage is whole")
  const latest = await post({ model: 'gpt-5', previous_response_id: answered[60] })
  t.equal(latest.session, 'busy-service', 'its latest response ids are kept')
  const oldest = await post({ model: 'gpt-5', previous_response_id: answered[1] })
  t.not(oldest.session, 'busy-service', 'its oldest went, past its quarter (10 of 40)')
})
