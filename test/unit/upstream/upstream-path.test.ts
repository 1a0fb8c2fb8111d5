import t from 'tap'
import { hasDotSegment, isProxyTarget, pathOf, probePath, upstreamPath, upstreamTarget } from '../../../src/upstream/upstream-path.js'

const openai = upstreamTarget(new URL('https://api.openai.com/v1'))
const azure = upstreamTarget(new URL('https://x.openai.azure.com/openai/v1?api-version=preview'))

t.test('dot segments are found plainly, percent-encoded and with backslashes', async (t) => {
  for (const target of ['/v1/../x', '/v1/./x', '/v1/%2e%2e/x', '/v1/%2E./x', '/v1/.%2e', '/v1/a%2fb', '/v1\\..\\x', '/v1/a%5cb', '/v1/%zz']) {
    t.ok(hasDotSegment(target), target)
  }
  for (const target of ['/v1/responses', '/v1/files/file.txt', '/v1/x?path=../y', '/v1/.well', '/v1/a..b']) {
    t.notOk(hasDotSegment(target), target)
  }
})

t.test('only /v1 and what is under it is a proxy target', async (t) => {
  for (const target of ['/v1', '/v1/', '/v1/responses', '/v1?x=1']) t.ok(isProxyTarget(target), target)
  for (const target of ['/v10', '/v1x/responses', '/healthz', '/', '/V1/responses']) t.notOk(isProxyTarget(target), target)
})

t.test('client targets map onto the upstream base path and query', async (t) => {
  t.equal(upstreamPath('/v1/responses', openai), '/v1/responses')
  t.equal(upstreamPath('/v1/responses?stream=true', openai), '/v1/responses?stream=true')
  t.equal(upstreamPath('/v1/responses', azure), '/openai/v1/responses?api-version=preview')
  t.equal(upstreamPath('/v1/models?limit=2', azure), '/openai/v1/models?limit=2&api-version=preview')
  t.equal(upstreamPath('/v1/responses?api-version=2025-04-01-preview', azure), '/openai/v1/responses?api-version=2025-04-01-preview', "the client's own api-version, not both")
  t.equal(upstreamPath('/v1/responses?stream=true&api%2Dversion=x', azure), '/openai/v1/responses?stream=true&api%2Dversion=x', 'names compared as a server decodes them')
  t.equal(upstreamPath('/v1/responses?', azure), '/openai/v1/responses?api-version=preview', 'an empty query adds no stray separator')
  t.equal(upstreamPath('/v1/responses#frag', azure), '/openai/v1/responses?api-version=preview')
  t.equal(upstreamPath('/v1/../admin', openai), undefined)
  t.equal(upstreamPath('/admin', openai), undefined)
})

t.test('pathOf drops the query string', async (t) => {
  t.equal(pathOf('/v1/responses?key=secret'), '/v1/responses')
  t.equal(pathOf('/v1/responses'), '/v1/responses')
})

t.test("probe paths go under the base path with the url's query, probe_path's own parameters first and winning", async (t) => {
  t.equal(probePath('/models', openai), '/v1/models')
  t.equal(probePath('/models', azure), '/openai/v1/models?api-version=preview')
  t.equal(probePath('/models?limit=1', openai), '/v1/models?limit=1')
  t.equal(probePath('/models?limit=1', azure), '/openai/v1/models?limit=1&api-version=preview')
  t.equal(probePath('/models?api-version=2024-10-21', azure), '/openai/v1/models?api-version=2024-10-21', 'its own api-version, not both')
  t.equal(probePath('/models?api%2Dversion=2024-10-21', azure), '/openai/v1/models?api%2Dversion=2024-10-21', 'names compared as a server decodes them')
  t.equal(probePath('/models?', azure), '/openai/v1/models?api-version=preview', 'an empty query adds no stray separator')
  t.equal(probePath('/models#top', azure), '/openai/v1/models?api-version=preview', 'a fragment is dropped')
  const twoParams = upstreamTarget(new URL('https://x.example/v1?a=1&b=2'))
  t.equal(probePath('/health?b=3&c=4', twoParams), '/v1/health?b=3&c=4&a=1')
})
