import t from 'tap'
import { upstreamHeaderRules } from '../../../src/upstream/request-headers.js'

/** Header pairs as a list of `name: value` strings, for readable assertions. */
function lines (headers: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) out.push(`${headers[i]!}: ${headers[i + 1]!}`)
  return out
}

t.test('the client headers pass in order and spelling, with the session under both spellings', async (t) => {
  const headers = upstreamHeaderRules({ defaultOriginator: 'codex_cli_rs' })
  const out = headers(['Authorization', 'Bearer sk-client', 'Content-Type', 'application/json', 'X-Custom', 'a'], 'sess-1')
  t.strictSame(lines(out), [
    'Authorization: Bearer sk-client',
    'Content-Type: application/json',
    'X-Custom: a',
    'session_id: sess-1',
    'session-id: sess-1',
    'originator: codex_cli_rs'
  ])
})

t.test('hop-by-hop headers, host, expect and the client\'s own session headers are dropped', async (t) => {
  const headers = upstreamHeaderRules({ defaultOriginator: 'o' })
  const out = headers([
    'Host', 'gateway:8080', 'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked',
    'TE', 'trailers', 'Upgrade', 'h2c', 'Expect', '100-continue', 'X-Hop', 'dropped', 'session-id', 'old', 'session_id', 'old', 'Accept', '*/*'
  ], 'new')
  t.strictSame(lines(out), ['Accept: */*', 'session_id: new', 'session-id: new', 'originator: o'])
})

t.test('a client originator is kept; the default goes only where none was sent', async (t) => {
  const headers = upstreamHeaderRules({ defaultOriginator: 'codex_cli_rs' })
  t.strictSame(lines(headers(['originator', 'codex_exec'], 's')), ['originator: codex_exec', 'session_id: s', 'session-id: s'])
})

t.test('managed mode replaces the client\'s authorization with the upstream key, exactly once', async (t) => {
  const headers = upstreamHeaderRules({ defaultOriginator: 'o', upstreamApiKey: 'sk-managed', extra: { authorization: 'Bearer other' } })
  const out = lines(headers(['Authorization', 'Bearer gk-client'], 's'))
  t.strictSame(out.filter((line) => line.toLowerCase().startsWith('authorization')), ['authorization: Bearer sk-managed'])
  t.notOk(out.join('\n').includes('gk-client'), 'the client key never goes upstream')
})

t.test('configured extra headers replace a client header of the same name', async (t) => {
  const headers = upstreamHeaderRules({ defaultOriginator: 'o', extra: { 'x-team': 'blue', originator: 'fixed' } })
  const out = lines(headers(['X-Team', 'red', 'originator', 'client'], 's'))
  t.strictSame(out, ['session_id: s', 'session-id: s', 'x-team: blue', 'originator: fixed'])
})

t.test("an attempt's trace headers replace the client's; without them the client's pass", async (t) => {
  const headers = upstreamHeaderRules({ defaultOriginator: 'codex_cli_rs' })
  const client = ['traceparent', '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01', 'TraceState', 'v=1', 'originator', 'codex_exec']
  t.strictSame(lines(headers(client, 's')), [
    'traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01', 'TraceState: v=1', 'originator: codex_exec', 'session_id: s', 'session-id: s'
  ])
  const ours = ['traceparent', '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cccccccccccccccc-01', 'tracestate', 'v=1']
  t.strictSame(lines(headers(client, 's', ours)), [
    'originator: codex_exec', 'session_id: s', 'session-id: s',
    'traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-cccccccccccccccc-01', 'tracestate: v=1'
  ])
})
