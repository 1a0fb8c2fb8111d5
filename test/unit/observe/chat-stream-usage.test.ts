/**
 * A streamed Chat Completions answer's usage (`stream_options.include_usage`) is learned once,
 * however the stream is cut into chunks; its `chatcmpl-` id is never learned as a response id;
 * its model is reported when traced; and a Responses observer is not changed by any of it.
 */
import t from 'tap'
import { chunkUsage } from '../../../src/observe/chat-completions-api.js'
import { ResponseObserver, type ModelApi } from '../../../src/observe/response-observer.js'
import type { TokenUsage } from '../../../src/session/session-usage.js'
import { chatChunk, chatCompletionStream, chatUsage } from '../../support/chat-completions.js'
import { randomChunks, responseStream } from '../../support/mock-upstream.js'

interface Learned { ids: string[], usages: TokenUsage[], models: string[] }

/** What a ResponseObserver for `api` reports of an SSE answer delivered in `chunks`. */
function observe (chunks: Buffer[], api: ModelApi = 'chat', traced = false): Learned {
  const learned: Learned = { ids: [], usages: [], models: [] }
  const observer = new ResponseObserver({
    onResponseId: (id) => learned.ids.push(id),
    onUsage: (usage) => learned.usages.push(usage),
    holdUsage: () => {},
    releaseUsage: () => {},
    traced,
    onResponseModel: (model) => learned.models.push(model)
  }, api)
  observer.onResponseStart(200, ['Content-Type', 'text/event-stream; charset=utf-8'])
  for (const chunk of chunks) observer.onChunk(chunk)
  observer.onResponseEnd()
  return learned
}

const EXPECTED: TokenUsage = { input: 1500, cached: 1280, output: 12, reasoning: 4 }
const STREAM = Buffer.from(chatCompletionStream('chatcmpl-usage', 'Grüße aus 世界, "quoted" and usage: {} 🎉 ', { usage: chatUsage() }))

t.test('the usage chunk of an include_usage stream is counted once, split at every byte', async (t) => {
  t.same(observe([STREAM]), { ids: [], usages: [EXPECTED], models: [] }, 'whole: the usage, no id')
  const usageAt = STREAM.indexOf('"choices":[]')
  const from = STREAM.lastIndexOf('data:', usageAt)
  const to = STREAM.indexOf('[DONE]') + '[DONE]\n\n'.length
  const wrong: string[] = []
  // Every cut inside the usage chunk and [DONE], as two chunks and as three around each byte.
  for (let at = from; at <= to; at++) {
    const two = observe([STREAM.subarray(0, at), STREAM.subarray(at)])
    if (JSON.stringify(two.usages) !== JSON.stringify([EXPECTED])) wrong.push(`cut at ${at}: ${JSON.stringify(two.usages)}`)
    const three = observe([STREAM.subarray(0, at), STREAM.subarray(at, at + 1), STREAM.subarray(at + 1)])
    if (JSON.stringify(three.usages) !== JSON.stringify([EXPECTED])) wrong.push(`byte ${at} alone: ${JSON.stringify(three.usages)}`)
  }
  t.same(wrong, [], `${to - from + 1} cuts, each counts the usage once`)
  t.same(observe([...STREAM].map((byte) => Buffer.from([byte]))).usages, [EXPECTED], 'one byte a chunk')
  for (let seed = 1; seed <= 50; seed++) {
    if (JSON.stringify(observe(randomChunks(STREAM, seed, 1 + seed * 7)).usages) !== JSON.stringify([EXPECTED])) t.fail(`seed ${seed}`)
  }
})

t.test('a stream without include_usage reports no usage (the request counts with zero tokens)', async (t) => {
  const plain = Buffer.from(chatCompletionStream('chatcmpl-plain', 'no usage here'))
  t.notMatch(plain.toString(), /"usage"/, 'the chunks have no usage key at all')
  t.same(observe([plain]), { ids: [], usages: [], models: [] })
  t.same(observe(randomChunks(plain, 3, 5)).usages, [])
})

t.test('the chatcmpl- id is not learned: a chat completion is no Responses lineage', async (t) => {
  t.same(observe([STREAM]).ids, [])
  t.same(observe([STREAM], 'chat', true).ids, [], 'nor when traced')
})

t.test('traced, the model of the first chunk is reported once', async (t) => {
  const learned = observe(randomChunks(STREAM, 9, 11), 'chat', true)
  t.same(learned.models, ['gpt-test-2026-01-01'])
  t.same(learned.usages, [EXPECTED])
  t.same(observe([STREAM]).models, [], 'untraced: not looked for')
})

t.test('usage repeated on every chunk (a running total) counts once: the last', async (t) => {
  const head = { id: 'chatcmpl-running', object: 'chat.completion.chunk', model: 'm' }
  const usage = (output: number): Record<string, unknown> => ({ prompt_tokens: 10, completion_tokens: output, total_tokens: 10 + output })
  const running = [1, 2, 3].map((n) => chatChunk({ ...head, choices: [{ index: 0, delta: { content: `w${n}` }, finish_reason: null }], usage: usage(n) })).join('')
  const last = { input: 10, cached: 0, output: 3, reasoning: 0 }
  t.same(observe([Buffer.from(running + 'data: [DONE]\n\n')]).usages, [last], 'reported at [DONE]')
  t.same(observe([Buffer.from(running)]).usages, [last], 'reported at the end when [DONE] never came')
  const final = chatChunk({ ...head, choices: [], usage: usage(4) })
  t.same(observe([Buffer.from(running + final + 'data: [DONE]\n\n')]).usages, [{ ...last, output: 4 }], 'the usage-only chunk is the last word')
})

t.test('the Responses observer is unchanged: it learns nothing from a chat stream, and its own stream as before', async (t) => {
  t.same(observe([STREAM], 'responses'), { ids: [], usages: [], models: [] })
  const responses = Buffer.from(responseStream('resp_same', 'hello'))
  t.same(observe([responses], 'responses').ids, ['resp_same'])
  t.same(observe([responses], 'chat'), { ids: [], usages: [], models: [] }, 'a chat observer ignores typed Responses events')
})

t.test('chunkUsage reads only a real usage object of a chunk', async (t) => {
  t.same(chunkUsage('{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}'), { usage: { prompt_tokens: 1 }, final: true })
  t.same(chunkUsage('{"object":"chat.completion.chunk","choices":[{"delta":{}}], "usage" : {"prompt_tokens":2}}'), { usage: { prompt_tokens: 2 }, final: false }, 'spaced, with choices')
  t.equal(chunkUsage('{"object":"chat.completion.chunk","choices":[],"usage":null}'), undefined, 'usage null')
  t.equal(chunkUsage('{"choices":[{"delta":{"content":"\\"usage\\":{\\"prompt_tokens\\":9}"}}]}'), undefined, 'usage written in the content')
  t.equal(chunkUsage('{"choices":[{"delta":{"content":"usage"}}],"usage":null}'), undefined, 'the word as a value')
  t.equal(chunkUsage('{"object":"response","usage":{"input_tokens":1}}'), undefined, 'another object')
  t.equal(chunkUsage('[DONE]'), undefined)
  t.equal(chunkUsage('{"usage":{"prompt_tokens":1'), undefined, 'broken JSON')
})
