import t from 'tap'
import { trailingUsage } from '../../../src/observe/response-observer.js'
import { tokenUsage } from '../../../src/observe/responses-api.js'

const finalEvent = (usage: string): string => `{"type":"response.completed","sequence_number":7,"response":{"id":"resp_1","output":[{"text":"\\"usage\\":{\\"input_tokens\\":999}"}],"usage":${usage}}}`

t.test('the usage of a final event reads the same by the quick path and by JSON.parse', async (t) => {
  const shapes = [
    // As the Responses API writes it: the quick path.
    '{"input_tokens":1536,"input_tokens_details":{"cached_tokens":1024},"output_tokens":38,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":1574}',
    // Other orders, extra keys, spacing, a missing detail: parsed.
    '{"output_tokens":38,"input_tokens":1536,"input_tokens_details":{"cached_tokens":1024},"output_tokens_details":{"reasoning_tokens":12},"total_tokens":1574}',
    '{"input_tokens":1536,"input_tokens_details":{"cached_tokens":1024,"audio_tokens":3},"output_tokens":38,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":1574}',
    '{ "input_tokens": 1536, "input_tokens_details": { "cached_tokens": 1024 }, "output_tokens": 38, "total_tokens": 1574 }'
  ]
  for (const usage of shapes) {
    t.same(tokenUsage(trailingUsage(finalEvent(usage))), tokenUsage(JSON.parse(usage)), usage)
  }
})

t.test('no usage from a final event without token counts', async (t) => {
  t.equal(trailingUsage(finalEvent('{"total_tokens":5}')), undefined)
  t.equal(trailingUsage('{"type":"response.completed","response":{"id":"resp_1"}}'), undefined)
})

t.test('a pretty-printed usage (as the API writes JSON bodies) is found too, and a usage that is no object is passed over', async (t) => {
  const pretty = JSON.stringify({ id: 'resp_1', object: 'response', output: [], usage: { input_tokens: 10, input_tokens_details: { cached_tokens: 4 }, output_tokens: 2 }, user: null }, null, 2)
  t.same(tokenUsage(trailingUsage(pretty)), { input: 10, cached: 4, output: 2, reasoning: 0 })
  t.same(tokenUsage(trailingUsage(pretty.slice(pretty.indexOf('"output"')))), { input: 10, cached: 4, output: 2, reasoning: 0 }, 'from a body\'s end alone')
  // response.failed: no usage of its own; a tool's schema before it has a `usage` property.
  t.equal(trailingUsage('{"response":{"tools":[{"parameters":{"properties":{"usage":{"type":"string"}}}}],"usage" : null}}'), undefined)
  t.equal(trailingUsage('"usage"'), undefined, 'a key at the very start, with nothing after it')
})

t.test('Chat Completions usage: cached tokens from prompt_tokens_details, or DeepSeek\'s prompt_cache_hit_tokens', async (t) => {
  t.same(tokenUsage({ prompt_tokens: 100, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 64 } }), { input: 100, cached: 64, output: 5, reasoning: 0 })
  t.same(tokenUsage({ prompt_tokens: 100, completion_tokens: 5, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36 }), { input: 100, cached: 64, output: 5, reasoning: 0 }, 'DeepSeek\'s shape')
  t.same(tokenUsage({ prompt_tokens: 100, completion_tokens: 5 }), { input: 100, cached: 0, output: 5, reasoning: 0 }, 'neither: none cached')
})
