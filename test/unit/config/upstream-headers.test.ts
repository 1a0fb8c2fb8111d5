import t from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { refuses, yamlFile } from '../../support/config-checks.js'

const REFUSED = ['host', 'content-length', 'transfer-encoding', 'expect', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']

// Regression: UPSTREAM_HEADERS={"expect":"100-continue"} (or content-length, transfer-encoding…)
// was accepted, and then every request failed with 502 (undici UND_ERR_NOT_SUPPORTED and the like).
t.test('a configured header that frames the request or belongs to one connection is refused at load', async (t) => {
  for (const name of REFUSED) {
    refuses(t, () => loadConfig({ env: { UPSTREAM_HEADERS: JSON.stringify({ [name]: 'x' }) } }), `UPSTREAM_HEADERS.${name}`, new RegExp(`${name} cannot be configured`))
  }
  refuses(t, () => loadConfig({ env: { UPSTREAM_HEADERS: '{"Expect":"100-continue"}' } }), 'UPSTREAM_HEADERS.Expect', /Expect cannot be configured/)
  refuses(t, () => loadConfig({ env: { UPSTREAM_ENV_HEADERS: '{"Content-Length":"LENGTH"}' } }), 'UPSTREAM_ENV_HEADERS.Content-Length')
  refuses(t, () => loadConfig({ file: yamlFile(t, 'upstream:\n  headers:\n    Transfer-Encoding: chunked\n') }), 'upstream.headers.Transfer-Encoding')
  refuses(t, () => loadConfig({ file: yamlFile(t, 'upstream:\n  env_headers:\n    host: UPSTREAM_HOST\n') }), 'upstream.env_headers.host', /belongs in the upstream's url/)
  const upstreams = JSON.stringify([{ name: 'a', url: 'http://127.0.0.1:1' }, { name: 'b', url: 'http://127.0.0.1:2', headers: { connection: 'close' } }])
  refuses(t, () => loadConfig({ env: { UPSTREAMS: upstreams } }), 'UPSTREAMS[1].headers.connection')
  refuses(t, () => loadConfig({ file: yamlFile(t, 'upstreams:\n  - name: a\n    url: http://127.0.0.1:1\n    headers: { upgrade: websocket }\n') }), 'upstreams[0].headers.upgrade')
})

t.test('other configured headers, authorization and {session} ones included, are kept, names lower-cased', async (t) => {
  const config = loadConfig({ env: { UPSTREAM_HEADERS: '{"X-Api-Version":"2","Authorization":"Bearer k","X-Hostname":"h","Content-Type-Hint":"x"}' } })
  t.strictSame(config.upstream.headers, { 'x-api-version': '2', authorization: 'Bearer k', 'x-hostname': 'h', 'content-type-hint': 'x' })
  const routed = loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://127.0.0.1:1', headers: { 'x-session-id': '{session}' } }]) } })
  t.strictSame(routed.upstreams[0]!.headers, { 'x-session-id': '{session}' })
})

// Regression: `X-Team: a` and `x-team: b` loaded as the one header x-team: b, the first value
// dropped without a word (YAML and JSON refuse only keys spelled the same).
t.test('a header named twice in different case is refused, naming the second spelling', async (t) => {
  refuses(t, () => loadConfig({ env: { UPSTREAM_HEADERS: '{"X-Team":"a","x-team":"b"}' } }), 'UPSTREAM_HEADERS.x-team', /names the header x-team a second time/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'upstream:\n  env_headers:\n    X-Key: KEY_A\n    x-key: KEY_B\n') }), 'upstream.env_headers.x-key', /second time/)
  refuses(t, () => loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://127.0.0.1:1', headers: { 'X-A': '1', 'x-a': '2' } }]) } }), 'UPSTREAMS[0].headers.x-a')
})
