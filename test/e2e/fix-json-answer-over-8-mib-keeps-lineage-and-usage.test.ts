/**
 * Regression: a non-streamed Responses answer over 8 MiB (generated images come back in it as
 * base64) was kept by the observer only up to 8 MiB and then passed unread: its response id was
 * never learned, so a call continuing it with `previous_response_id` from a new connection
 * landed in another session (and on another cache), and its usage counted zero tokens.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { startGatewayWithUpstream } from '../support/gateway.js'
import type { UpstreamHandler } from '../support/mock-upstream.js'
import { callRecords, recordsUntil } from '../support/cache-calls.js'

const IMAGE = 'iVBORw0KGgoAAAANSUhEUgAA'.repeat(Math.ceil(9 * 1024 * 1024 / 24))
const USAGE = { input_tokens: 3000, input_tokens_details: { cached_tokens: 2048 }, output_tokens: 4200, output_tokens_details: { reasoning_tokens: 64 }, total_tokens: 7200 }

/** The first call gets a 9 MiB answer (pretty-printed, as the API writes JSON, or compact); a continuing call a small one. */
function answers (indent: number | undefined): UpstreamHandler {
  let n = 0
  return (req, res) => {
    const body = JSON.parse(req.body.toString('utf8')) as { previous_response_id?: string }
    const id = `resp_images_${indent ?? 0}_${++n}`
    const output = body.previous_response_id === undefined ? [{ id: 'ig_1', type: 'image_generation_call', status: 'completed', result: IMAGE }] : []
    const text = JSON.stringify({ id, object: 'response', created_at: 1764000000, status: 'completed', instructions: 'Draw "it".', model: 'gpt-5', output, tools: [{ type: 'image_generation' }], usage: USAGE, user: null, metadata: {} }, null, indent)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
  }
}

/** POST /v1/responses on a new connection; the session the upstream was sent and the answer's id. */
async function post (baseURL: string, body: Record<string, unknown>, seen: () => string | undefined): Promise<{ session: string | undefined, id: string }> {
  const agent = new Agent({ connections: 1 })
  try {
    const res = await request(`${baseURL}/responses`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const answer = await res.body.json() as { id: string }
    return { session: seen(), id: answer.id }
  } finally {
    await agent.close()
  }
}

for (const [label, indent] of [['pretty-printed', 2], ['compact', undefined]] as const) {
  t.test(`a ${label} JSON answer over 8 MiB: its id continues its session, and its usage counts`, async (t) => {
    const { upstream, gateway } = await startGatewayWithUpstream(t, {}, answers(indent))
    const seen = (): string | undefined => upstream.requests.at(-1)?.headers['session-id'] as string | undefined
    const first = await post(gateway.baseURL, { model: 'gpt-5', input: 'Draw a cat.', tools: [{ type: 'image_generation' }] }, seen)
    t.ok(first.session !== undefined)
    await recordsUntil(gateway.origin, first.session!, 1)
    const next = await post(gateway.baseURL, { model: 'gpt-5', input: 'Now a dog.', previous_response_id: first.id }, seen)
    t.equal(next.session, first.session, 'the continuing call is in the first one\'s session')
    await recordsUntil(gateway.origin, next.session!, 1) // the continuing call's record is written
    const records = (await callRecords(gateway.origin, first.session!)).data
    t.equal(records.length, 2, 'both calls are the session\'s')
    t.has(records.at(-1), { status: 200, input_tokens: 3000, cached_tokens: 2048, output_tokens: 4200, reasoning_tokens: 64, cache: 'hit' }, 'the large answer\'s usage was read')
  })
}
