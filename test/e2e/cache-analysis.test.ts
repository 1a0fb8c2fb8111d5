import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import OpenAI from 'openai'
import t, { type Test } from 'tap'
import { request } from 'undici'
import type { CallView } from '../../src/session/call-record.js'
import { chatCompletionStream } from '../support/chat-completions.js'
import { answerTurn, answerWithChosenUsage, callBody, callRecords, modelCall, OTHER_TOOLS, prose, recordsUntil, sizedModelCall, userTurn, type CallOptions } from '../support/cache-calls.js'
import { startGateway, startGatewayWithUpstream } from '../support/gateway.js'
import { replyJson, responseStream, startMockUpstream, type UpstreamHandler } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { startRedis } from '../support/redis-server.js'
import { startUpstreamProcesses } from '../support/upstream-process.js'

const BIG = 2000

t.test('each cache outcome and miss reason, from a real sequence of calls', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerWithChosenUsage)
  const session = 's-cache-reasons'
  await modelCall(gateway.baseURL, { session, usage: [BIG, 0] }) // first call
  await modelCall(gateway.baseURL, { session, usage: [BIG, 1920] }) // same prefix again
  await modelCall(gateway.baseURL, { session, usage: [BIG, 0], tools: OTHER_TOOLS }) // tools changed
  await modelCall(gateway.baseURL, { session, usage: [BIG, 0], tools: OTHER_TOOLS }) // same prefix, soon after, still missed
  await modelCall(gateway.baseURL, { session, usage: [BIG, 512], tools: OTHER_TOOLS })
  await modelCall(gateway.baseURL, { session, usage: [50, 0], tools: OTHER_TOOLS }) // a small prompt

  const { status, data } = await callRecords(gateway.origin, session)
  t.equal(status, 200)
  t.same(data.map((r) => [r.cache, r.miss_reason]).reverse(), [
    ['miss', 'first_request'],
    ['hit', null],
    ['miss', 'prefix_changed'],
    ['miss', 'unexplained'],
    ['partial', null],
    ['n/a', null]
  ], 'newest first; each outcome with its reason')
  const hit = data[4]!
  t.has(hit, { model: 'gpt-5', upstream: 'default', status: 200, input_tokens: BIG, cached_tokens: 1920, output_tokens: 5, reasoning_tokens: 2 })
  t.match(hit.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.type(hit.ttfb_ms, 'number')
  t.ok(hit.duration_ms >= hit.ttfb_ms!, 'duration covers ttfb')
  t.ok(Date.parse(data[0]!.time) >= Date.parse(data[5]!.time), 'newest first')

  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  t.match(metrics, /session_gateway_cache_requests_total\{outcome="hit"\} 1\n/)
  t.match(metrics, /session_gateway_cache_requests_total\{outcome="miss"\} 3\n/)
  t.match(metrics, /session_gateway_cache_misses_total\{reason="prefix_changed"\} 1\n/)
  t.match(metrics, /session_gateway_cache_misses_total\{reason="first_request"\} 1\n/)
  t.match(metrics, /session_gateway_model_tokens_total\{model="gpt-5",type="cached"\} 2432\n/)
  t.match(metrics, /session_gateway_tokens_total\{type="cached",upstream="default"\} 2432\n/, 'the existing family is unchanged')
})

t.test('regression: calls the upstream refused take no model label, so junk model names cannot use up the 20 slots', async (t) => {
  const refuseJunk: UpstreamHandler = (req, res) => {
    const { model } = JSON.parse(req.body.toString('utf8')) as { model: string }
    if (model.startsWith('junk-')) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}')
      return
    }
    answerWithChosenUsage(req, res, undefined as never)
  }
  const { gateway } = await startGatewayWithUpstream(t, {}, refuseJunk)
  for (let i = 1; i <= 22; i++) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'session-id': 's-junk' }, body: JSON.stringify({ model: `junk-${i}`, input: 'x' }) })
    t.equal(res.statusCode, 401)
    await res.body.dump()
  }
  await modelCall(gateway.baseURL, { session: 's-junk', usage: [BIG, 1024] })
  await recordsUntil(gateway.origin, 's-junk', 23)
  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  t.notMatch(metrics, /model="junk-/, 'no refused call named a series')
  t.match(metrics, /session_gateway_model_tokens_total\{model="gpt-5",type="cached"\} 1024\n/, 'the answered call has its own')
  t.match(metrics, /session_gateway_cache_requests_total\{outcome="n\/a"\} 22\n/, 'the refused calls are still counted as calls')
})

/** A Chat Completions answer whose cached tokens are the request's `metadata.cached` (the SDK sends metadata as strings). */
const answerChatWithChosenCache: UpstreamHandler = (req, res) => {
  const body = JSON.parse(req.body.toString('utf8')) as { model: string, metadata?: { cached?: string } }
  const text = JSON.stringify({
    id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
    object: 'chat.completion',
    created: 1,
    model: body.model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: BIG, completion_tokens: 5, total_tokens: BIG + 5, prompt_tokens_details: { cached_tokens: Number(body.metadata?.cached ?? 0) } }
  })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

t.test('a chat call\'s first message is its prefix: a changed system prompt is prefix_changed, a new turn is not', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerChatWithChosenCache)
  const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'sk-test', maxRetries: 0 })
  const session = 's-chat-prefix'
  const call = async (system: string, user: string, cached: number): Promise<void> => {
    await client.chat.completions.create({
      model: 'gpt-4.1',
      messages: [{ role: 'system', content: system }, { role: 'user', content: user }],
      metadata: { cached: String(cached) }
    }, { headers: { 'session-id': session } })
  }
  await call('You are terse.', 'first question', 0)
  await call('You are terse.', 'a new turn, same system prompt', 0)
  await call('You are verbose.', 'the system prompt changed', 0)
  await call('You are verbose.', 'and again', 1920)
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => [r.cache, r.miss_reason]).reverse(), [
    ['miss', 'first_request'],
    ['miss', 'unexplained'],
    ['miss', 'prefix_changed'],
    ['hit', null]
  ], 'only the changed system message explains its miss')
  t.equal(data[0]!.model, 'gpt-4.1')
})

t.test('a chat call\'s leading system and developer messages are its prefix: a changed developer message is prefix_changed, a longer conversation is not', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerChatWithChosenCache)
  const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'sk-test', maxRetries: 0 })
  const session = 's-chat-developer'
  const system = { role: 'system', content: 'You are a careful assistant. "Quote" exact names.' } as const
  const turns = [{ role: 'user', content: 'first question' }, { role: 'assistant', content: 'an answer' }] as const
  const call = async (developer: string, more: number, cached: number): Promise<void> => {
    await client.chat.completions.create({
      model: 'gpt-4.1',
      messages: [system, { role: 'developer', content: developer }, ...turns.slice(0, more), { role: 'user', content: `question ${more}` }],
      metadata: { cached: String(cached) }
    }, { headers: { 'session-id': session } })
  }
  await call('Answer in French.', 0, 0)
  await call('Answer in French.', 2, 0)
  await call('Answer in German.', 2, 0)
  await call('Answer in German.', 2, 1920)
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => [r.cache, r.miss_reason]).reverse(), [
    ['miss', 'first_request'],
    ['miss', 'unexplained'],
    ['miss', 'prefix_changed'],
    ['hit', null]
  ], 'only the changed developer message explains its miss')
})

/** A structured-output schema: `answer` and one more property. */
const schema = (extra: string): Record<string, unknown> => ({ type: 'object', properties: { answer: { type: 'string' }, [extra]: { type: 'number' } }, required: ['answer', extra], additionalProperties: false })

t.test('a changed structured-output schema is prefix_changed: a Responses call\'s text.format', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerWithChosenUsage)
  const session = 's-schema-responses'
  const text = (extra: string, verbosity = 'medium'): object => ({ format: { type: 'json_schema', name: 'reply', strict: true, schema: schema(extra) }, verbosity })
  const call = async (body: object): Promise<void> => {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'session-id': session }, body: JSON.stringify(body) })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  const usage = { metadata: { test_usage: [BIG, 0] } }
  await call({ model: 'gpt-5', instructions: 'Reply in JSON.', text: text('score'), input: 'one', ...usage })
  await call({ model: 'gpt-5', instructions: 'Reply in JSON.', text: text('score'), input: 'two', ...usage })
  await call({ model: 'gpt-5', instructions: 'Reply in JSON.', text: text('confidence'), input: 'three', ...usage })
  await call({ text: text('confidence'), input: 'four', ...usage, instructions: 'Reply in JSON.', model: 'gpt-5' })
  await call({ model: 'gpt-5', instructions: 'Reply in JSON.', text: text('confidence', 'low'), input: 'five', ...usage })
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => r.miss_reason).reverse(), [
    'first_request',
    'unexplained',
    'prefix_changed',
    'unexplained',
    'prefix_changed'
  ], 'only the changed schema explains its miss (text is read whole: so does a changed verbosity), not the same fields in another order')
  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  t.match(metrics, /session_gateway_cache_misses_total\{reason="prefix_changed"\} 2\n/)
})

t.test('a changed structured-output schema is prefix_changed: a chat call\'s response_format', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerChatWithChosenCache)
  const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'sk-test', maxRetries: 0 })
  const session = 's-schema-chat'
  const call = async (extra: string, user: string): Promise<void> => {
    await client.chat.completions.create({
      model: 'gpt-4.1',
      messages: [{ role: 'system', content: 'Reply in JSON.' }, { role: 'user', content: user }],
      response_format: { type: 'json_schema', json_schema: { name: 'reply', strict: true, schema: schema(extra) } },
      metadata: { cached: '0' }
    }, { headers: { 'session-id': session } })
  }
  await call('score', 'first question')
  await call('score', 'a new turn, same schema')
  await call('confidence', 'the schema changed')
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => r.miss_reason).reverse(), ['first_request', 'unexplained', 'prefix_changed'], 'only the changed schema explains its miss')
})

/** Answers every Responses call with a stream whose prompt of BIG tokens missed the cache. */
const answerEveryCallMissed: UpstreamHandler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
  res.end(responseStream(`resp_missed_${randomBytes(4).toString('hex')}`, 'ok', { input_tokens: BIG, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: BIG + 5 }))
}

t.test('a changed reasoning effort is prefix_changed: a Responses call\'s reasoning, through the SDK', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerEveryCallMissed)
  const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'sk-test', maxRetries: 0 })
  const session = 's-reasoning-responses'
  const call = async (body: Omit<OpenAI.Responses.ResponseCreateParamsStreaming, 'stream'>): Promise<void> => {
    const stream = await client.responses.create({ ...body, stream: true }, { headers: { 'session-id': session } })
    for await (const _event of stream) { /* read to the end, as a client does */ }
  }
  const base = { model: 'gpt-5', instructions: 'You are a coding agent.' }
  await call({ ...base, reasoning: { effort: 'medium', summary: 'auto' }, input: 'one' })
  await call({ ...base, reasoning: { effort: 'medium', summary: 'auto' }, input: 'two' })
  await call({ ...base, reasoning: { effort: 'high', summary: 'auto' }, input: 'three' })
  await call({ reasoning: { effort: 'high', summary: 'auto' }, input: 'four', ...base })
  await call({ ...base, reasoning: { effort: 'high', summary: 'detailed' }, input: 'five' })
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => [r.cache, r.miss_reason]).reverse(), [
    ['miss', 'first_request'],
    ['miss', 'unexplained'],
    ['miss', 'prefix_changed'],
    ['miss', 'unexplained'],
    ['miss', 'prefix_changed']
  ], 'only the changed effort explains its miss (reasoning is read whole: so does a changed summary), not the same fields in another order')
})

t.test('a changed reasoning_effort or verbosity is prefix_changed: a chat call, through the SDK', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerChatWithChosenCache)
  const client = new OpenAI({ baseURL: gateway.baseURL, apiKey: 'sk-test', maxRetries: 0 })
  const session = 's-reasoning-chat'
  const call = async (effort: 'low' | 'high', verbosity: 'low' | 'high', user: string): Promise<void> => {
    await client.chat.completions.create({
      model: 'gpt-5',
      messages: [{ role: 'developer', content: 'Answer briefly.' }, { role: 'user', content: user }],
      reasoning_effort: effort,
      verbosity
    }, { headers: { 'session-id': session } })
  }
  await call('low', 'low', 'first question')
  await call('low', 'low', 'a new turn, same settings')
  await call('high', 'low', 'the effort changed')
  await call('high', 'low', 'again')
  await call('high', 'high', 'the verbosity changed')
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => r.miss_reason).reverse(), ['first_request', 'unexplained', 'prefix_changed', 'unexplained', 'prefix_changed'], 'only a changed effort or verbosity explains its miss')
})

const turn = userTurn
const answer = answerTurn
/** A call whose usage is what its prompt would be at 4 bytes a token, none of it cached. */
const sizedCall = sizedModelCall

t.test('a changed input whose calls share too little to cache is input_changed: a window that drops old turns, an unrelated question', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerWithChosenUsage)
  const session = 's-input-window'
  const call = async (input: unknown[] | string, previousResponseId?: string): Promise<void> => await sizedCall(gateway.baseURL, { session, input, previousResponseId })
  await call([turn('u1', 2100), answer('a1', 1900), turn('u2', 2300)])
  // Appended to: the prompt begins with the previous one.
  await call([turn('u1', 2100), answer('a1', 1900), turn('u2', 2300), answer('a2', 1700), turn('u3', 2500)])
  // A window of the last three turns: the oldest dropped, so only instructions and tools are shared.
  await call([turn('u2', 2300), answer('a2', 1700), turn('u3', 2500), answer('a3', 1500), turn('u4', 2200)])
  // An unrelated question, as one-shot calls sharing a session send: an array, then a string.
  await call([turn('another task altogether', 6400)])
  await call(prose('and a string input', 6000))
  // Continuing a response stored upstream: `input` holds only the new turn, and is not judged.
  await call([turn('go on', 6000)], 'resp_1')
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => r.miss_reason).reverse(), ['first_request', 'unexplained', 'input_changed', 'input_changed', 'input_changed', 'unexplained'],
    'an appended history and a previous_response_id turn are not changed inputs; a moved window and unrelated questions are')
  const metrics = await (await request(`${gateway.origin}/metrics`)).body.text()
  t.match(metrics, /session_gateway_cache_misses_total\{reason="input_changed"\} 3\n/)
})

t.test('a changed input is not the reason when what both calls share could be cached: long instructions, an edit deep in the history', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerWithChosenUsage)
  const session = 's-input-shared'
  // Long instructions, as codex's: some 2,000 tokens that any two of its calls share.
  const instructions = prose('instructions', 8000)
  const call = async (input: unknown[]): Promise<void> => await sizedCall(gateway.baseURL, { session, instructions, input })
  await call([turn('u1', 2100), answer('a1', 1900), turn('u2', 2300)])
  // Compacted into a summary: the history changed from its first item, the instructions did not.
  await call([turn('summary of the conversation', 1200), turn('u3', 2000)])
  const history = Array.from({ length: 10 }, (_, k) => k % 2 === 0 ? turn(`u${k}`, 1000 + 37 * k) : answer(`a${k}`, 900 + 41 * k))
  const short = async (input: unknown[]): Promise<void> => await sizedCall(gateway.baseURL, { session, input })
  await short(history)
  // The ninth item edited: the eight before it (some 2,000 tokens) are still shared.
  await short(history.map((item, k) => k === 8 ? turn('u8, edited', 1400) : item))
  // One message: a long document (in place of the history: a changed input), then a question that changes each call.
  const asking = (question: string): unknown[] => [{ role: 'user', content: `${prose('a document', 6000)} Q: ${question}` }]
  await short(asking('what is it?'))
  await short(asking('and who wrote it?'))
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => r.miss_reason).reverse(), ['first_request', 'unexplained', 'prefix_changed', 'unexplained', 'input_changed', 'unexplained'],
    'a compaction under long instructions, an edit deep in a history, and a new question after a long document, have another cause')
})

t.test('a changed prefix is told before a changed input, and a changed input before an idle gap', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { CACHE_IDLE_SECONDS: '0' }, answerWithChosenUsage)
  const session = 's-input-order'
  const call = async (input: unknown[], tools?: unknown[]): Promise<void> => await sizedCall(gateway.baseURL, { session, input, tools })
  await call([turn('one', 6000)])
  await call([turn('two', 6100)], OTHER_TOOLS)
  await call([turn('three', 6200)], OTHER_TOOLS)
  await call([turn('three', 6200), turn('four', 300)], OTHER_TOOLS)
  const { data } = await callRecords(gateway.origin, session)
  t.same(data.map((r) => r.miss_reason).reverse(), ['first_request', 'prefix_changed', 'input_changed', 'idle'])
})

t.test('a gap longer than CACHE_IDLE_SECONDS explains a miss as idle', async (t) => {
  // 0 s: any gap at all between the end of one call and the start of the next is too long.
  const { gateway } = await startGatewayWithUpstream(t, { CACHE_IDLE_SECONDS: '0' }, answerWithChosenUsage)
  await modelCall(gateway.baseURL, { session: 's-idle', usage: [BIG, 0] })
  await modelCall(gateway.baseURL, { session: 's-idle', usage: [BIG, 0] })
  const { data } = await callRecords(gateway.origin, 's-idle')
  t.same(data.map((r) => r.miss_reason), ['idle', 'first_request'])
})

t.test('the prefix is read whichever way the body goes: chunked, or read for the session', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, answerWithChosenUsage)
  await modelCall(gateway.baseURL, { session: 's-chunked', usage: [BIG, 0], chunked: true })
  await modelCall(gateway.baseURL, { session: 's-chunked', usage: [BIG, 0], chunked: true, instructions: 'Now verbose.' })
  t.same((await callRecords(gateway.origin, 's-chunked')).data.map((r) => r.miss_reason), ['prefix_changed', 'first_request'], 'chunked body')

  // No session header: the body is read for lineage fields, and its prefix from the same buffer.
  const body = (instructions: string, usage: [number, number]): string => JSON.stringify({ model: 'gpt-5', instructions, prompt_cache_key: 'pck-cache', input: 'x', stream: true, metadata: { test_usage: usage } })
  for (const instructions of ['one', 'two']) {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: body(instructions, [BIG, 0]), headers: { 'content-type': 'application/json' } })
    await res.body.dump()
  }
  const sessions = await (await request(`${gateway.origin}/gateway/sessions`)).body.json() as { data: Array<{ id: string }> }
  const derived = sessions.data.find((s) => !s.id.startsWith('s-'))!
  t.same((await callRecords(gateway.origin, derived.id)).data.map((r) => r.miss_reason), ['prefix_changed', 'first_request'], 'body read for its session')
})

t.test('CACHE_ANALYSIS=false reads no prefix: a changed prompt is not told apart', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, { CACHE_ANALYSIS: 'false' }, answerWithChosenUsage)
  await modelCall(gateway.baseURL, { session: 's-off', usage: [BIG, 0] })
  await modelCall(gateway.baseURL, { session: 's-off', usage: [BIG, 0], tools: OTHER_TOOLS })
  const { data } = await callRecords(gateway.origin, 's-off')
  t.same(data.map((r) => r.miss_reason), ['unexplained', 'first_request'])
  t.equal(data[0]!.model, null, 'nor the model from the request')
})

t.test('an unknown session is 404; only model calls get records; CACHE_RECORDS_PER_SESSION keeps the newest', async (t) => {
  const { gateway, upstream } = await startGatewayWithUpstream(t, { CACHE_RECORDS_PER_SESSION: '2' }, answerWithChosenUsage)
  const missing = await callRecords(gateway.origin, 'no-such-session')
  t.equal(missing.status, 404)
  upstream.handle(replyJson({ object: 'list', data: [] }))
  await (await request(`${gateway.baseURL}/models`, { headers: { 'session-id': 's-few' } })).body.dump()
  t.same(await callRecords(gateway.origin, 's-few'), { status: 200, data: [] }, 'a known session without model calls')
  upstream.handle(answerWithChosenUsage)
  for (const usage of [[BIG, 0], [BIG, 100], [BIG, 2000]] as Array<[number, number]>) await modelCall(gateway.baseURL, { session: 's-few', usage })
  t.same((await callRecords(gateway.origin, 's-few')).data.map((r) => r.cached_tokens), [2000, 100])
})

t.test('the prefix tap changes no byte of a 5 MB body, streamed or chunked', async (t) => {
  const { gateway, upstream } = await startGatewayWithUpstream(t, {}, replyJson({ id: 'resp_big', object: 'response', usage: { input_tokens: 3000, input_tokens_details: { cached_tokens: 0 }, output_tokens: 1 } }))
  const filler = randomBytes(3_900_000).toString('base64') // ~5.2 MB of string content
  const make = (tools: unknown[]): Buffer => Buffer.from(JSON.stringify({ model: 'gpt-5', instructions: 'i "q" \\ }', input: [{ role: 'user', content: filler }], tools }))
  const sent = [make([]), make([{ type: 'web_search' }])]
  for (const [i, body] of sent.entries()) {
    const chunked = i === 1
    const res = await request(`${gateway.baseURL}/responses`, {
      method: 'POST',
      body: chunked ? Readable.from(chunksOf(body, 64 * 1024 + 7)) : body,
      headers: { 'content-type': 'application/json', 'session-id': 's-big' }
    })
    await res.body.dump()
    t.ok(upstream.requests[i]!.body.equals(body), `upstream received identical bytes (${chunked ? 'chunked' : 'content-length'})`)
  }
  t.same((await callRecords(gateway.origin, 's-big')).data.map((r) => r.miss_reason), ['prefix_changed', 'first_request'], 'and read their prefixes')
})

t.test('rebound: a session whose upstream died and that moved to another misses with reason rebound', async (t) => {
  const ups = await startUpstreamProcesses(t, ['up-a', 'up-b'])
  // The upstream processes report 10 input tokens and no cached ones: a miss with this minimum.
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url }))), CACHE_MIN_TOKENS: '1' })
  t.teardown(gateway.close)
  const call = async (): Promise<void> => {
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'session-id': 's-rebound' }, body: '{"model":"gpt-test","input":"hi"}' })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  await call()
  const first = ups.find((u) => u.requests.length > 0)!
  const other = ups.find((u) => u !== first)!
  await first.kill()
  await call()
  t.equal(other.requests.length, 1, 'the second call was served by the other upstream')
  const records = (await callRecords(gateway.origin, 's-rebound')).data
  t.same(records.map((r) => [r.upstream, r.cache, r.miss_reason]), [[other.name, 'miss', 'rebound'], [first.name, 'miss', 'first_request']])
})

t.test('records are shared by replicas through Redis and survive a restart', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const upstream = await startMockUpstream(answerWithChosenUsage)
  t.teardown(upstream.close)
  const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '500' }
  const one = await startGateway(env)
  const two = await startGateway(env)
  t.teardown(two.close)
  await readyWithRedis(one.origin)
  await readyWithRedis(two.origin)

  await modelCall(one.baseURL, { session: 's-shared', usage: [BIG, 0] })
  await recordsUntil(two.origin, 's-shared', 1)
  // Replica two has never served this session: it judges from the record replica one wrote.
  await modelCall(two.baseURL, { session: 's-shared', usage: [BIG, 0] })
  await recordsUntil(two.origin, 's-shared', 2)
  await modelCall(two.baseURL, { session: 's-shared', usage: [BIG, 0], tools: OTHER_TOOLS })
  const seenByTwo = await recordsUntil(two.origin, 's-shared', 3)
  t.same(seenByTwo.map((r) => r.miss_reason), ['prefix_changed', 'unexplained', 'first_request'])
  t.same(await recordsUntil(one.origin, 's-shared', 3), seenByTwo, 'both replicas show the same records')
  // A changed input is judged from the other replica's record too: its items' checkpoints, in Redis's JSON.
  await sizedCall(two.baseURL, { session: 's-shared-input', input: [turn('u1', 2100), answer('a1', 1900), turn('u2', 2300)] })
  await recordsUntil(one.origin, 's-shared-input', 1)
  await sizedCall(one.baseURL, { session: 's-shared-input', input: [turn('u2', 2300), answer('a2', 1700), turn('u3', 2500)] })
  t.same((await recordsUntil(two.origin, 's-shared-input', 2)).map((r) => r.miss_reason), ['input_changed', 'first_request'])

  await one.close()
  const again = await startGateway(env)
  t.teardown(again.close)
  await readyWithRedis(again.origin)
  t.same(await recordsUntil(again.origin, 's-shared', 3), seenByTwo, 'a restarted gateway still has them')
})

/** How a rate-limited upstream refuses: a 429, or a 200 stream whose first event is an `error` (a chat stream's `{"error":…}` chunk). */
type Refusal = '429' | 'error event' | 'chat error chunk'

const RATE_LIMITED = '{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}'

/**
 * Answers a call whose `metadata.refuse` names a refusal as that refusal; any other with the
 * usage it chose (a chat call in a chat stream's usage chunk).
 */
const refuseAsAsked: UpstreamHandler = (req, res, raw) => {
  const body = JSON.parse(req.body.toString('utf8')) as { metadata?: { refuse?: Refusal, test_usage?: [number, number] } }
  const refusal = body.metadata?.refuse
  if (refusal === undefined && !req.url.endsWith('/chat/completions')) return answerWithChosenUsage(req, res, raw)
  if (refusal === '429') {
    res.writeHead(429, { 'content-type': 'application/json' }).end(`{"error":${RATE_LIMITED}}`)
    return
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  if (refusal === undefined) {
    const [input = 0, cached = 0] = body.metadata?.test_usage ?? []
    res.end(chatCompletionStream('chatcmpl-cache', 'ok', { usage: { prompt_tokens: input, completion_tokens: 5, total_tokens: input + 5, prompt_tokens_details: { cached_tokens: cached } } }))
  } else if (refusal === 'chat error chunk') {
    res.end(`data: {"error":${RATE_LIMITED}}\n\ndata: [DONE]\n\n`)
  } else {
    res.end('event: error\ndata: {"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":0}\n\n')
  }
}

/** Four calls of one session: refused, answered (a miss), refused with other tools, answered with them (a miss). */
async function refusedThenAnswered (t: Test, baseURL: string, origin: string, session: string, refusal: Refusal = '429'): Promise<CallView[]> {
  const call = async (options: CallOptions, refuse: boolean): Promise<void> => {
    const body = JSON.parse(callBody(options)) as { metadata: Record<string, unknown> }
    if (refuse) body.metadata.refuse = refusal
    const path = refusal === 'chat error chunk' ? '/chat/completions' : '/responses'
    const res = await request(`${baseURL}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'session-id': session }, body: JSON.stringify(body) })
    t.equal(res.statusCode, refuse && refusal === '429' ? 429 : 200)
    await res.body.dump()
  }
  await call({ usage: [0, 0] }, true)
  await recordsUntil(origin, session, 1)
  await call({ usage: [BIG, 0] }, false)
  await recordsUntil(origin, session, 2)
  await call({ usage: [0, 0], tools: OTHER_TOOLS }, true)
  await recordsUntil(origin, session, 3)
  await call({ usage: [BIG, 0], tools: OTHER_TOOLS }, false)
  return await recordsUntil(origin, session, 4)
}

const EXPLAINED_AFTER_REFUSALS = [
  [200, 'miss', 'prefix_changed'], // judged against the answered call before the refusal
  [429, 'n/a', null],
  [200, 'miss', 'first_request'], // the refusal before it put nothing in a cache
  [429, 'n/a', null]
]

t.test('regression: a miss right after a refused call (a 429 the SDK retries) is judged against the last answered call', async (t) => {
  const { gateway } = await startGatewayWithUpstream(t, {}, refuseAsAsked)
  const records = await refusedThenAnswered(t, gateway.baseURL, gateway.origin, 's-after-429')
  t.same(records.map((r) => [r.status, r.cache, r.miss_reason]), EXPLAINED_AFTER_REFUSALS, 'newest first; the refused calls are recorded, not judged by')
  t.same(records.map((r) => r.error), [null, null, null, null], 'a refusal by its status has no stream error')
})

t.test('regression: a miss after a call refused inside its 200 stream (an `error` event first) is judged against the last answered call', async (t) => {
  for (const refusal of ['error event', 'chat error chunk'] as const) {
    const { gateway } = await startGatewayWithUpstream(t, {}, refuseAsAsked)
    const records = await refusedThenAnswered(t, gateway.baseURL, gateway.origin, `s-${refusal.replaceAll(' ', '-')}`, refusal)
    t.same(records.map((r) => [r.status, r.cache, r.miss_reason, r.error]), [
      [200, 'miss', 'prefix_changed', null],
      [200, 'n/a', null, 'rate_limit_exceeded'],
      [200, 'miss', 'first_request', null],
      [200, 'n/a', null, 'rate_limit_exceeded']
    ], `${refusal}: the refused calls say why and are passed over`)
    const lines = gateway.logs.filter((line) => line.msg === 'request' && String(line.path).startsWith('/v1/'))
    t.same(lines.map((line) => line.error), ['rate_limit_exceeded', undefined, 'rate_limit_exceeded', undefined], `${refusal}: the log line names the stream's error`)
    t.notMatch(gateway.logText(), /slow down/, 'never the message')
  }
})

t.test('an error event after response.created is a response that failed, not a refusal: the next miss is judged against it', async (t) => {
  const failsUnderWay: UpstreamHandler = (req, res, raw) => {
    const body = JSON.parse(req.body.toString('utf8')) as { metadata?: { refuse?: string } }
    if (body.metadata?.refuse === undefined) return answerWithChosenUsage(req, res, raw)
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.end('event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_under_way","object":"response","model":"gpt-5"}}\n\n' +
      'event: error\ndata: {"type":"error","code":"server_error","message":"oops","param":null,"sequence_number":1}\n\n')
  }
  const { gateway } = await startGatewayWithUpstream(t, {}, failsUnderWay)
  const records = await refusedThenAnswered(t, gateway.baseURL, gateway.origin, 's-failed-under-way', 'error event')
  t.same(records.map((r) => [r.cache, r.miss_reason, r.error]), [
    ['miss', 'unexplained', null], // judged against the failed call, whose prompt had the same tools
    ['n/a', null, null],
    ['miss', 'unexplained', null],
    ['n/a', null, null]
  ])
})

t.test('regression: a miss after a refused call is judged against the last answered call in Redis too', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  const { gateway } = await startGatewayWithUpstream(t, { REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '500' }, refuseAsAsked)
  await readyWithRedis(gateway.origin)
  const records = await refusedThenAnswered(t, gateway.baseURL, gateway.origin, 's-after-429-redis')
  t.same(records.map((r) => [r.status, r.cache, r.miss_reason]), EXPLAINED_AFTER_REFUSALS)
  const streamRefusals = await refusedThenAnswered(t, gateway.baseURL, gateway.origin, 's-error-event-redis', 'error event')
  t.same(streamRefusals.map((r) => [r.miss_reason, r.error]), [['prefix_changed', null], [null, 'rate_limit_exceeded'], ['first_request', null], [null, 'rate_limit_exceeded']], 'the stream error is kept in Redis and judged by')
})

function chunksOf (bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size))
  return out
}

async function readyWithRedis (origin: string): Promise<void> {
  for (;;) {
    const body = await (await request(`${origin}/readyz`)).body.json() as { store?: { state?: string } }
    if (body.store?.state === 'ok') return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
