import t from 'tap'
import { lineageOfTarget } from '../../../src/session/target-lineage.js'

t.test('a stored response named in the path, with its actions', async (t) => {
  t.same(lineageOfTarget('/v1/responses/resp_1'), { previousResponseId: 'resp_1' })
  t.same(lineageOfTarget('/v1/responses/resp_1/cancel'), { previousResponseId: 'resp_1' })
  t.same(lineageOfTarget('/v1/responses/resp_1/input_items'), { previousResponseId: 'resp_1' })
  t.same(lineageOfTarget('/v1/responses/resp%5F1'), { previousResponseId: 'resp_1' }, 'percent-decoded, as the upstream reads it')
})

t.test('a conversation named in the path, with its items', async (t) => {
  t.same(lineageOfTarget('/v1/conversations/conv_1'), { conversation: 'conv_1' })
  t.same(lineageOfTarget('/v1/conversations/conv_1/items/msg_2'), { conversation: 'conv_1' })
})

t.test('endpoints, collections and other targets name nothing', async (t) => {
  for (const path of ['/v1/responses', '/v1/responses/', '/v1/responses/compact', '/v1/responses/input_tokens', '/v1/conversations', '/v1/conversations/', '/v1/models/gpt-5', '/v1/chat/completions', '/v1/responses/%E0%A4%A']) {
    t.equal(lineageOfTarget(path), undefined, path)
  }
})
