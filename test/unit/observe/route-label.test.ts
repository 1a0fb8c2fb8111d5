import t from 'tap'
import { routeLabel } from '../../../src/observe/route-label.js'

t.test('known resources keep their name; ids become {id}', async (t) => {
  t.equal(routeLabel('/v1'), '/v1')
  t.equal(routeLabel('/v1/responses'), '/v1/responses')
  t.equal(routeLabel('/v1/responses/resp_123'), '/v1/responses/{id}')
  t.equal(routeLabel('/v1/responses/resp_123/cancel'), '/v1/responses/{id}/cancel')
  t.equal(routeLabel('/v1/responses/resp_123/input_items'), '/v1/responses/{id}/input_items')
  t.equal(routeLabel('/v1/models/gpt-5'), '/v1/models/{id}')
})

t.test('nested resources are one label', async (t) => {
  t.equal(routeLabel('/v1/chat/completions'), '/v1/chat/completions')
  t.equal(routeLabel('/v1/chat/completions/chatcmpl-1'), '/v1/chat/completions/{id}')
  t.equal(routeLabel('/v1/fine_tuning/jobs/ftjob-1/events'), '/v1/fine_tuning/jobs/{id}/events')
  t.equal(routeLabel('/v1/responses/compact'), '/v1/responses/compact', "regression: codex's remote compaction is an endpoint, not a response id")
  t.equal(routeLabel('/v1/responses/input_tokens'), '/v1/responses/input_tokens', 'so is counting input tokens')
})

t.test('unknown resources and deep paths stay bounded', async (t) => {
  t.equal(routeLabel('/v1/typo'), '/v1/{other}')
  t.equal(routeLabel('/v1/anything-at-all/x/y'), '/v1/{other}')
  t.equal(routeLabel('/v1/files/a/b/c/d/e/f'), '/v1/files/{id}/{id}/{id}', 'at most three segments after the resource')
  const labels = new Set<string>()
  for (let i = 0; i < 5000; i++) labels.add(routeLabel(`/v1/responses/resp_${i}`))
  t.strictSame([...labels], ['/v1/responses/{id}'], 'one series for any number of ids')
})

t.test('regression: paths outside /v1 (refused upgrades) are {other}, not /v1', async (t) => {
  for (const path of ['/healthz', '/', '/v1x/responses', '//v1/responses', 'http://evil.example/v1/responses']) t.equal(routeLabel(path), '{other}', path)
  t.equal(routeLabel('/v1/'), '/v1')
})
