import t from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { refuses, yamlFile } from '../../support/config-checks.js'

// Regression: SERVER_HEADERS_TIMEOUT_MS=600000 is in its range, but with the default request
// timeout (300000) Node refused to create the server: "cannot start: ERR_OUT_OF_RANGE The value
// of "headersTimeout" is out of range", in Node's option names, not ours.
t.test('a headers timeout longer than the request timeout is refused, naming both keys', async (t) => {
  refuses(t, () => loadConfig({ env: { SERVER_HEADERS_TIMEOUT_MS: '600000' } }), 'SERVER_HEADERS_TIMEOUT_MS',
    /server\.headers_timeout_ms \(SERVER_HEADERS_TIMEOUT_MS\) 600000 is longer than server\.request_timeout_ms \(SERVER_REQUEST_TIMEOUT_MS\) 300000 \(its default\)/)
  refuses(t, () => loadConfig({ env: { SERVER_REQUEST_TIMEOUT_MS: '10000' } }), 'SERVER_REQUEST_TIMEOUT_MS',
    /server\.headers_timeout_ms \(SERVER_HEADERS_TIMEOUT_MS\) 30000 \(its default\) is longer than server\.request_timeout_ms \(SERVER_REQUEST_TIMEOUT_MS\) 10000/)
  const file = yamlFile(t, 'server:\n  headers_timeout_ms: 120000\n  request_timeout_ms: 60000\n')
  refuses(t, () => loadConfig({ file }), 'server.headers_timeout_ms', /raise server\.request_timeout_ms \(SERVER_REQUEST_TIMEOUT_MS\) to at least 120000, or set it to 0/)
  refuses(t, () => loadConfig({ file, env: { SERVER_REQUEST_TIMEOUT_MS: '90000' } }), 'server.headers_timeout_ms', /90000/)
})

t.test('a headers timeout up to the request timeout, or any with no request timeout, is accepted', async (t) => {
  t.equal(loadConfig({ env: { SERVER_HEADERS_TIMEOUT_MS: '300000' } }).server.headersTimeoutMs, 300_000, 'equal to the default request timeout')
  t.equal(loadConfig({ env: { SERVER_HEADERS_TIMEOUT_MS: '600000', SERVER_REQUEST_TIMEOUT_MS: '600000' } }).server.headersTimeoutMs, 600_000)
  t.equal(loadConfig({ env: { SERVER_HEADERS_TIMEOUT_MS: '600000', SERVER_REQUEST_TIMEOUT_MS: '0' } }).server.requestTimeoutMs, 0, '0: no request timeout')
})

t.test('METRICS_PORT equal to PORT is refused: the second listener could never bind', async (t) => {
  refuses(t, () => loadConfig({ env: { PORT: '9000', METRICS_PORT: '9000' } }), 'METRICS_PORT', /metrics\.port \(METRICS_PORT\) 9000 is server\.port \(PORT\) too/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'metrics:\n  port: 8080\n') }), 'metrics.port', /-1 to be served on the main one/)
  t.equal(loadConfig({ env: { PORT: '0', METRICS_PORT: '0' } }).metrics.port, 0, '0 and 0 are two free ports')
  t.equal(loadConfig({ env: { PORT: '9000', METRICS_PORT: '9001' } }).metrics.port, 9001)
})
