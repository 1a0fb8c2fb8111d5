import t from 'tap'
import { classifyUpstreamFailure } from '../../../src/relay/upstream-failure.js'

function failure (code: string, name = 'Error'): Error & { code?: string } {
  return Object.assign(new Error('x'), { code, name })
}

t.test('connect failures are 502 upstream_unreachable, named by their code', async (t) => {
  for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT']) {
    const result = classifyUpstreamFailure(failure(code))
    t.equal(result.kind, 'connect', code)
    t.equal(result.code, code)
    t.equal(result.error.status, 502)
    t.equal(result.error.code, 'upstream_unreachable')
  }
})

t.test('timeouts are 504: connect timeout and headers or body timeouts apart', async (t) => {
  const connect = classifyUpstreamFailure(failure('UND_ERR_CONNECT_TIMEOUT'))
  t.equal(connect.kind, 'timeout')
  t.equal(connect.error.code, 'upstream_connect_timeout')
  for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) {
    const result = classifyUpstreamFailure(failure(code))
    t.equal(result.kind, 'timeout', code)
    t.equal(result.error.status, 504)
    t.equal(result.error.code, 'upstream_timeout')
  }
})

t.test('a malformed response is a protocol failure, also when undici names it only by class', async (t) => {
  for (const err of [failure('HPE_INVALID_CONSTANT'), Object.assign(new Error('x'), { name: 'HTTPParserError' }), failure('UND_ERR_INFO')]) {
    const result = classifyUpstreamFailure(err)
    t.equal(result.kind, 'protocol')
    t.equal(result.error.code, 'upstream_failed')
    t.match(result.error.message, /malformed response/)
  }
})

t.test('anything else is a reset: 502 upstream_failed with its code in the message', async (t) => {
  for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']) {
    const result = classifyUpstreamFailure(failure(code))
    t.equal(result.kind, 'reset', code)
    t.equal(result.error.status, 502)
    t.match(result.error.message, code)
  }
})
