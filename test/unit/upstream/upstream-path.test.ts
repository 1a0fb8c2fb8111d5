import t from 'tap'
import { hasDotSegment, isProxyTarget, pathOf, upstreamPath, upstreamTarget } from '../../../src/upstream/upstream-path.js'

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
  t.equal(upstreamPath('/v1/../admin', openai), undefined)
  t.equal(upstreamPath('/admin', openai), undefined)
})

t.test('pathOf drops the query string', async (t) => {
  t.equal(pathOf('/v1/responses?key=secret'), '/v1/responses')
  t.equal(pathOf('/v1/responses'), '/v1/responses')
})
