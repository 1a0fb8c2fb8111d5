/**
 * Regression: a session field holding a lone surrogate escape (`"prompt_cache_key":"\ud800"`,
 * valid JSON that a client truncating an emoji can send) was answered 500 by the gateway
 * itself: a conversation or cache key is hashed into its session id as UTF-8, and a lone
 * surrogate has no UTF-8, so the hash threw. Such a value names no session: the request goes
 * upstream byte for byte, decided by the next rule, like any other value that is no id.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { headerValue } from '../support/responses-client.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('regression: a lone surrogate in conversation, prompt_cache_key or previous_response_id is no session id, and no 500', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  const post = async (body: string): Promise<{ status: number, seen: Buffer | undefined, session: string | undefined, source: unknown }> => {
    const before = upstream.requests.length
    const logged = gateway.logs.length
    const agent = new Agent({ connections: 1 })
    try {
      const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body })
      await res.body.text()
      const line = await gateway.waitForLog((l) => (l.msg === 'request' || l.msg === 'refused') && gateway.logs.indexOf(l) >= logged)
      const seen = upstream.requests.length > before ? upstream.requests.at(-1) : undefined
      return { status: res.statusCode, seen: seen?.body, session: headerValue(seen?.headers, 'session-id'), source: line.session_source }
    } finally {
      await agent.close()
    }
  }

  // Written as JSON text: JSON.stringify would turn the lone surrogate into the same escape.
  for (const body of [
    '{"model":"gpt-5","input":"hi","prompt_cache_key":"tenant-\\ud83d"}',
    '{"model":"gpt-5","input":"hi","conversation":"conv_\\udc00"}',
    '{"model":"gpt-5","input":"hi","conversation":{"id":"\\ud800"}}',
    '{"model":"gpt-5","input":"hi","previous_response_id":"resp_\\udfff"}'
  ]) {
    const sent = await post(body)
    t.equal(sent.status, 200, `${body}: answered by the upstream, not refused by the gateway`)
    t.same(sent.seen, Buffer.from(body), 'the body went upstream byte for byte')
    t.equal(sent.source, 'connection', 'the field named no session: the connection decided')
    t.match(sent.session, UUID)
  }

  const next = await post('{"model":"gpt-5","conversation":"conv_\\ud800","prompt_cache_key":"tenant-7"}')
  t.equal(next.status, 200)
  t.equal(next.source, 'prompt_cache_key', 'a usable field beside it still decides')
  const again = await post('{"model":"gpt-5","prompt_cache_key":"tenant-7"}')
  t.equal(again.session, next.session, 'the same session as the cache key alone')
  t.equal(gateway.logs.filter((l) => l.level === 'error').length, 0, 'no error was logged')
})
