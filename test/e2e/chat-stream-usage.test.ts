/**
 * Streamed Chat Completions usage (`stream_options.include_usage`) counts as Responses usage
 * does, over real sockets: in the session's totals, in `session_gateway_tokens_total` and in
 * the call record's cache outcome; a stream without it counts the request with zero tokens;
 * however the upstream's writes cut the usage chunk, it counts once; the stream reaches the
 * client byte for byte; and the `chatcmpl-` id never becomes lineage.
 */
import t from 'tap'
import { request } from 'undici'
import type { SessionUsage } from '../../src/session/session-usage.js'
import { callRecords } from '../support/cache-calls.js'
import { chatCompletionStream, chatUsage } from '../support/chat-completions.js'
import { startGatewayWithUpstream, type RunningGateway } from '../support/gateway.js'
import { replySse } from '../support/mock-upstream.js'

const WITH_USAGE = chatCompletionStream('chatcmpl-stream-1', 'A streamed chat answer, with "usage" in its text. ', { usage: chatUsage() })
const TOKENS = { input_tokens: 1500, cached_tokens: 1280, output_tokens: 12, reasoning_tokens: 4 }

/** One streamed chat completion in `session`; resolves with the bytes the client got. */
async function streamedChat (gateway: RunningGateway, session: string, includeUsage = true): Promise<string> {
  const body = JSON.stringify({ model: 'gpt-test', stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}), messages: [{ role: 'user', content: 'hi' }] })
  const res = await request(`${gateway.baseURL}/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'session-id': session } })
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return await res.body.text()
}

async function sessionUsage (gateway: RunningGateway, session: string): Promise<SessionUsage> {
  const res = await request(`${gateway.origin}/gateway/sessions/${encodeURIComponent(session)}`)
  return await res.body.json() as SessionUsage
}

/** `session_gateway_tokens_total` of the default upstream, by type. */
async function tokensTotal (gateway: RunningGateway): Promise<Record<string, number>> {
  const text = await (await request(`${gateway.origin}/metrics`)).body.text()
  const totals: Record<string, number> = {}
  for (const [, type, value] of text.matchAll(/^session_gateway_tokens_total\{type="(\w+)",upstream="default"\} (\S+)$/gm)) totals[type!] = Number(value)
  return totals
}

t.test('a streamed chat completion with include_usage counts its tokens in the session, /metrics and its call record', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, replySse([WITH_USAGE]))
  t.equal(await streamedChat(gateway, 's-chat-stream'), WITH_USAGE, 'the client gets the stream byte for byte')

  t.has(await sessionUsage(gateway, 's-chat-stream'), { id: 's-chat-stream', requests: 1, ...TOKENS, cache_hit_ratio: 0.8533 })
  t.same(await tokensTotal(gateway), { input: 1500, cached: 1280, output: 12, reasoning: 4 }, 'tokens_total')
  const { data } = await callRecords(gateway.origin, 's-chat-stream')
  t.equal(data.length, 1, 'one call record')
  t.has(data[0], { model: 'gpt-test', status: 200, ...TOKENS, cache: 'hit' }, 'the cache outcome is judged from the streamed usage')
})

t.test('a streamed chat completion without include_usage counts the request with zero tokens', async (t) => {
  const plain = chatCompletionStream('chatcmpl-stream-2', 'no usage asked for')
  const { gateway } = await startGatewayWithUpstream(t, {}, replySse([plain]))
  t.equal(await streamedChat(gateway, 's-chat-plain', false), plain)
  t.has(await sessionUsage(gateway, 's-chat-plain'), { requests: 1, input_tokens: 0, cached_tokens: 0, output_tokens: 0, reasoning_tokens: 0 })
  t.same(await tokensTotal(gateway), { input: 0, cached: 0, output: 0, reasoning: 0 })
  t.has((await callRecords(gateway.origin, 's-chat-plain')).data[0], { input_tokens: 0, cache: 'n/a' })
})

t.test('the usage chunk cut into two TCP writes at every byte counts once each time', async (t) => {
  const from = WITH_USAGE.lastIndexOf('data:', WITH_USAGE.indexOf('"choices":[]'))
  const to = WITH_USAGE.length
  const { upstream, gateway } = await startGatewayWithUpstream(t)
  let requests = 0
  for (let at = from; at < to; at++) {
    const bytes = Buffer.from(WITH_USAGE)
    // A pause between the writes, so the gateway reads them apart.
    upstream.handle(replySse([bytes.subarray(0, at), bytes.subarray(at)], async () => await new Promise((resolve) => setTimeout(resolve, 1))))
    if (await streamedChat(gateway, 's-chat-cuts') !== WITH_USAGE) t.fail(`cut at ${at}: bytes differ`)
    requests++
  }
  // And the whole usage chunk one byte a write.
  const bytes = Buffer.from(WITH_USAGE)
  upstream.handle(replySse([bytes.subarray(0, from), ...[...bytes.subarray(from)].map((byte) => Buffer.from([byte]))], async () => await new Promise((resolve) => setImmediate(resolve))))
  t.equal(await streamedChat(gateway, 's-chat-cuts'), WITH_USAGE, 'one byte a write: byte for byte')
  requests++

  const usage = await sessionUsage(gateway, 's-chat-cuts')
  t.has(usage, { requests, input_tokens: 1500 * requests, cached_tokens: 1280 * requests, output_tokens: 12 * requests, reasoning_tokens: 4 * requests },
    `${requests} requests, each counted once`)
  t.same(await tokensTotal(gateway), { input: 1500 * requests, cached: 1280 * requests, output: 12 * requests, reasoning: 4 * requests })
})

t.test('the chatcmpl- id is not learned: previous_response_id naming it does not find the chat session', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t, {}, replySse([WITH_USAGE]))
  await streamedChat(gateway, 's-chat-lineage')
  upstream.handle(replySse(['data: [DONE]\n\n']))
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"model":"gpt-test","previous_response_id":"chatcmpl-stream-1"}', headers: { 'content-type': 'application/json' } })
  await res.body.dump()
  t.not(upstream.requests.at(-1)!.headers['session-id'], 's-chat-lineage', 'another session')
  const line = await gateway.waitForLog((l) => l.msg === 'request' && l.path === '/v1/responses')
  t.not(line.session_source, 'previous_response', 'not decided by lineage')
})
