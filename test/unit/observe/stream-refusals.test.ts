/**
 * A 2xx stream that carried an error before any response began is the upstream's refusal
 * (cache analysis passes over it); an error after a response began is a response that failed.
 * Each case is fed whole and cut at every byte.
 */
import t, { type Test } from 'tap'
import { ResponseObserver, type ModelApi } from '../../../src/observe/response-observer.js'
import { sseEvent } from '../../support/mock-upstream.js'

/** The refusal codes a ResponseObserver for `api` reports of `stream` cut at `at` (whole when undefined). */
function refusals (stream: string, api: ModelApi, at?: number): string[] {
  const codes: string[] = []
  const observer = new ResponseObserver({
    onResponseId: () => {},
    onUsage: () => {},
    holdUsage: () => {},
    releaseUsage: () => {},
    onRefusedInStream: (code) => codes.push(code)
  }, api)
  observer.onResponseStart(200, ['content-type', 'text/event-stream'])
  const bytes = Buffer.from(stream)
  for (const chunk of at === undefined ? [bytes] : [bytes.subarray(0, at), bytes.subarray(at)]) observer.onChunk(chunk)
  observer.onResponseEnd()
  return codes
}

/** The same answer for the stream whole and cut at every byte. */
function everyCut (t: Test, stream: string, api: ModelApi, expected: string[], what: string): void {
  t.same(refusals(stream, api), expected, what)
  const wrong: number[] = []
  for (let at = 1; at < Buffer.byteLength(stream); at++) if (JSON.stringify(refusals(stream, api, at)) !== JSON.stringify(expected)) wrong.push(at)
  t.same(wrong, [], `${what}: the same wherever it is cut`)
}

const RATE_LIMITED = { type: 'error', code: 'rate_limit_exceeded', message: 'slow down', param: null, sequence_number: 0 }

t.test('Responses: an error event before response.created is a refusal, after it a failed response', async (t) => {
  everyCut(t, sseEvent(RATE_LIMITED), 'responses', ['rate_limit_exceeded'], 'an error first')
  everyCut(t, `data: ${JSON.stringify(RATE_LIMITED)}\r\n\r\n`, 'responses', ['rate_limit_exceeded'], 'untyped (no event: line), CRLF')
  const created = sseEvent({ type: 'response.created', sequence_number: 0, response: { id: 'resp_1', object: 'response', model: 'gpt-5' } })
  everyCut(t, created + sseEvent({ ...RATE_LIMITED, code: 'server_error' }), 'responses', [], 'after response.created')
  // Some compatible servers' response.created has no id: the response had begun all the same.
  const createdWithoutId = sseEvent({ type: 'response.created', sequence_number: 0, response: { object: 'response', status: 'in_progress' } })
  everyCut(t, createdWithoutId + sseEvent(RATE_LIMITED), 'responses', [], 'after a response.created without an id')
})

t.test('Chat Completions: an error chunk, an error event or an error object first is a refusal; after a chunk it is not', async (t) => {
  const error = { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' }
  everyCut(t, `data: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`, 'chat', ['rate_limit_exceeded'], '{"error":…} first')
  everyCut(t, `event: error\ndata: ${JSON.stringify({ error })}\n\n`, 'chat', ['rate_limit_exceeded'], 'an event: error')
  everyCut(t, `data: ${JSON.stringify({ object: 'error', message: 'bad', type: 'BadRequestError', param: null, code: 400 })}\n\n`, 'chat', ['BadRequestError'], "vLLM's error object")
  const chunk = { id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'an "error" word' } }] }
  everyCut(t, `data: ${JSON.stringify(chunk)}\n\ndata: ${JSON.stringify({ error })}\n\n`, 'chat', [], 'an error after a chunk')
  const usageAfter = `data: ${JSON.stringify({ error })}\n\ndata: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 10, completion_tokens: 1 } })}\n\n`
  t.same(refusals(usageAfter, 'chat'), ['rate_limit_exceeded'], 'reported once; the stream is not read further')
})
