import t from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { refuses, yamlFile } from '../../support/config-checks.js'

t.test('UPSTREAM_URL alone is one upstream named default, in its own group', async (t) => {
  const config = loadConfig({ env: { UPSTREAM_URL: 'http://127.0.0.1:9/v1' } })
  t.equal(config.upstreams.length, 1)
  t.match(config.upstreams[0], { name: 'default', group: 'default', weight: 1, apiKey: '', headers: {} })
  t.equal(config.upstreams[0]!.url.href, 'http://127.0.0.1:9/v1')
})

t.test('a YAML upstreams list: defaults for weight and group, keys from the environment', async (t) => {
  const file = yamlFile(t, [
    'upstreams:',
    '  - name: a',
    '    url: https://api.openai.com/v1',
    '    api_key_env: KEY_A',
    '    group: project-1',
    '  - name: vllm-0',
    '    url: http://10.0.0.2:8000/v1?x=1',
    '    weight: 2.5',
    '    headers: { X-Session-Id: "{session}" }'
  ].join('\n'))
  const config = loadConfig({ file, env: { HOST: '127.0.0.1', KEY_A: 'sk-a' } })
  t.match(config.upstreams, [
    { name: 'a', group: 'project-1', weight: 1, apiKey: 'sk-a' },
    { name: 'vllm-0', group: 'vllm-0', weight: 2.5, apiKey: '', headers: { 'x-session-id': '{session}' } }
  ])
})

t.test('UPSTREAMS in the environment is the same list as JSON', async (t) => {
  const config = loadConfig({ env: { HOST: '127.0.0.1', UPSTREAMS: JSON.stringify([{ name: 'x', url: 'http://127.0.0.1:1' }, { name: 'y', url: 'http://127.0.0.1:2', api_key: 'sk-y' }]) } })
  t.same(config.upstreams.map((u) => u.name), ['x', 'y'])
  t.equal(config.upstreams[1]!.apiKey, 'sk-y')
})

t.test('every upstreams error names its key', async (t) => {
  const list = (items: unknown[]): Record<string, string> => ({ UPSTREAMS: JSON.stringify(items) })
  refuses(t, () => loadConfig({ env: { UPSTREAMS: '{nope' } }), 'UPSTREAMS', /JSON array/)
  refuses(t, () => loadConfig({ env: { UPSTREAMS: '{}' } }), 'UPSTREAMS', /list/)
  refuses(t, () => loadConfig({ env: list([{ url: 'http://x' }]) }), 'UPSTREAMS[0].name', /required/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a' }]) }), 'UPSTREAMS[0].url', /required/)
  refuses(t, () => loadConfig({ env: list([{ name: 'A b', url: 'http://x' }]) }), 'UPSTREAMS[0].name', /a-z/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x' }, { name: 'a', url: 'http://y' }]) }), 'UPSTREAMS[1].name', /twice/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'ftp://x' }]) }), 'UPSTREAMS[0].url', /http/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', weight: 0 }]) }), 'UPSTREAMS[0].weight', /above 0/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', wieght: 2 }]) }), 'UPSTREAMS[0].wieght', /unknown upstream field/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', group: 'G!' }]) }), 'UPSTREAMS[0].group')
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', headers: { 'x-a': 'line\nbreak' } }]) }), 'UPSTREAMS[0].headers.x-a', /control/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', api_key: 'k', api_key_env: 'K' }]) }), 'UPSTREAMS[0].api_key_env', /not both/)
  refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', api_key_env: 'NOT_SET_HERE' }]) }), 'UPSTREAMS[0].api_key_env', /NOT_SET_HERE, which is not set/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'upstreams:\n  - name: a\n') }), 'upstreams[0].url', /required/)
  for (const field of ['probe_interval_ms', 'probe_timeout_ms']) {
    refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', [field]: 99 }]) }), `UPSTREAMS[0].${field}`, /from 100 to 3600000, got 99/)
    refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', [field]: 3_600_001 }]) }), `UPSTREAMS[0].${field}`, /from 100 to 3600000/)
    refuses(t, () => loadConfig({ env: list([{ name: 'a', url: 'http://x', [field]: '1s' }]) }), `UPSTREAMS[0].${field}`, /whole number/)
  }
})

t.test("a probe's timeout is its own: 5000 ms by default whatever the interval, 100 to 3600000 ms like the interval", async (t) => {
  const probes = (fields: Record<string, unknown>): { probeIntervalMs: number, probeTimeoutMs: number } => {
    const [spec] = loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x', probe_path: '/models', ...fields }]) } }).upstreams
    return { probeIntervalMs: spec!.probeIntervalMs, probeTimeoutMs: spec!.probeTimeoutMs }
  }
  t.same(probes({}), { probeIntervalMs: 10_000, probeTimeoutMs: 5_000 })
  t.same(probes({ probe_interval_ms: 200 }), { probeIntervalMs: 200, probeTimeoutMs: 5_000 }, 'a short interval keeps the default timeout')
  t.same(probes({ probe_interval_ms: 100, probe_timeout_ms: 3_600_000 }), { probeIntervalMs: 100, probeTimeoutMs: 3_600_000 }, 'the edges are accepted; a timeout may be longer than the interval')
  t.same(probes({ probe_interval_ms: 3_600_000, probe_timeout_ms: 100 }), { probeIntervalMs: 3_600_000, probeTimeoutMs: 100 })
  const file = yamlFile(t, 'upstreams:\n  - name: a\n    url: http://x\n    probe_path: /models\n    probe_timeout_ms: 2000\n')
  t.equal(loadConfig({ file }).upstreams[0]!.probeTimeoutMs, 2_000, 'in YAML too')
})

t.test('probe settings that do nothing load, with a warning naming each key: a lone upstream\'s probe_path, timing without probe_path', async (t) => {
  const warnings = (items: unknown[]): string[] => loadConfig({ env: { UPSTREAMS: JSON.stringify(items) } }).warnings.map((w) => w.key)
  t.same(warnings([{ name: 'a', url: 'http://x/v1', probe_path: '/models', probe_interval_ms: 500 }]), ['UPSTREAMS[0].probe_path'], 'one upstream: only probe_path is named')
  t.same(warnings([{ name: 'a', url: 'http://x/v1', probe_path: '/models' }, { name: 'b', url: 'http://y/v1', probe_path: '/models' }]), [], 'several upstreams are probed')
  t.same(warnings([{ name: 'a', url: 'http://x/v1' }, { name: 'b', url: 'http://y/v1', probe_timeout_ms: 500 }, { name: 'c', url: 'http://z/v1', probe_interval_ms: 500, probe_timeout_ms: 500 }]),
    ['UPSTREAMS[1].probe_timeout_ms', 'UPSTREAMS[2].probe_interval_ms', 'UPSTREAMS[2].probe_timeout_ms'])
  const [timing] = loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x/v1', probe_interval_ms: 500 }]) } }).warnings
  t.equal(timing?.key, 'UPSTREAMS[0].probe_interval_ms', 'one upstream without probe_path: its timing is named')
  t.match(timing?.message, /with a single upstream: it is never probed/, 'and why: it would not be probed with a probe_path either')
  t.same(loadConfig({ env: { UPSTREAM_URL: 'http://127.0.0.1:9/v1' } }).warnings, [], 'UPSTREAM_URL alone has none')
  const [lone] = loadConfig({ file: yamlFile(t, 'upstreams:\n  - name: a\n    url: http://x/v1\n    probe_path: /models\n') }).warnings
  t.equal(lone?.key, 'upstreams[0].probe_path', 'in YAML, named by its YAML path')
  t.match(lone?.message, /^config upstreams\[0\]\.probe_path: has no effect with a single upstream/, 'worded as a ConfigError is')
})

t.test('a lone upstream\'s weight and group, and routing.* with one upstream, load with a warning naming each key', async (t) => {
  const lone = loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x/v1', weight: 3, group: 'g', headers: { 'x-k': 'v' } }]) } }).warnings
  t.same(lone.map((w) => w.key), ['UPSTREAMS[0].weight', 'UPSTREAMS[0].group'], 'weight and group, not headers (they do apply)')
  t.match(lone[0]?.message, /^config UPSTREAMS\[0\]\.weight: has no effect with a single upstream: every session goes to it/)
  t.same(loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x/v1', weight: 3, group: 'g' }, { name: 'b', url: 'http://y/v1' }]) } }).warnings, [], 'with two upstreams they place sessions')

  const env = { UPSTREAM_URL: 'http://127.0.0.1:9/v1', UPSTREAM_MAX_ATTEMPTS: '5', UPSTREAM_FAILURES_TO_EJECT: '2' }
  const routing = loadConfig({ env }).warnings
  t.same(routing.map((w) => w.key), ['UPSTREAM_MAX_ATTEMPTS', 'UPSTREAM_FAILURES_TO_EJECT'], 'each routing key set, named as it was set')
  t.match(routing[0]?.message, /^config UPSTREAM_MAX_ATTEMPTS: has no effect with a single upstream: routing\.max_attempts governs retries/)
  t.same(loadConfig({ env: { UPSTREAM_URL: 'http://127.0.0.1:9/v1', UPSTREAM_MAX_ATTEMPTS: '3' } }).warnings, [], 'a key at its default changes nothing either way: no warning')
  const file = yamlFile(t, 'routing:\n  replay_body_bytes: 0\n  cooldown_ms: 1000\n')
  t.same(loadConfig({ file }).warnings.map((w) => w.key), ['routing.replay_body_bytes', 'routing.cooldown_ms'], 'in YAML, by YAML path')
  const several = { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x/v1' }, { name: 'b', url: 'http://y/v1' }]), UPSTREAM_MAX_ATTEMPTS: '5' }
  t.same(loadConfig({ env: several }).warnings, [], 'with several upstreams routing.* does its work')
})

t.test('an upstream url without a path loads with a warning: /v1 is most often forgotten', async (t) => {
  const [bare] = loadConfig({ env: { UPSTREAM_URL: 'https://api.openai.com' } }).warnings
  t.equal(bare?.key, 'UPSTREAM_URL', 'named as it was set')
  t.match(bare?.message, /has no path, so \/v1\/responses is sent to https:\/\/api\.openai\.com\/responses/, 'it says where requests would go')
  t.match(bare?.message, /\(https:\/\/api\.openai\.com\/v1\)/, 'and what was most likely meant')
  t.same(loadConfig({ env: { UPSTREAM_URL: 'http://127.0.0.1:9/' } }).warnings.map((w) => w.key), ['UPSTREAM_URL'], 'a lone slash is no path either')
  t.same(loadConfig({ env: { UPSTREAM_URL: 'https://x.openai.azure.com/openai/v1?api-version=preview' } }).warnings, [], 'any path is taken as meant')
  const listed = loadConfig({ env: { UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x/v1' }, { name: 'b', url: 'http://y' }]) } }).warnings
  t.same(listed.map((w) => w.key), ['UPSTREAMS[1].url'], 'in a list, the one without a path, by its place')
  t.match(listed[0]?.message, /ignore this if "b" serves the API at its root/)
  const file = yamlFile(t, 'upstream:\n  url: http://127.0.0.1:9\n')
  t.same(loadConfig({ file }).warnings.map((w) => w.key), ['upstream.url'], 'in YAML, by YAML path')
})

t.test('UPSTREAM_URL and upstreams together is a start-up error naming both', async (t) => {
  const env = { UPSTREAM_URL: 'http://127.0.0.1:9/v1', UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://127.0.0.1:1' }]) }
  refuses(t, () => loadConfig({ env }), 'UPSTREAM_URL', /UPSTREAM_URL or UPSTREAMS, not both/)
  const file = yamlFile(t, 'upstream:\n  url: http://127.0.0.1:9\nupstreams:\n  - name: a\n    url: http://127.0.0.1:1\n')
  refuses(t, () => loadConfig({ file }), 'upstream.url', /not both/)
  // The example file writes upstream.url at its default: that names no upstream of its own.
  const atDefault = yamlFile(t, 'upstream:\n  url: https://api.openai.com/v1\nupstreams:\n  - name: a\n    url: http://127.0.0.1:1\n')
  t.same(loadConfig({ file: atDefault }).upstreams.map((u) => u.name), ['a'])
})

t.test('a per-upstream key is managed mode: beyond loopback it needs gateway keys', async (t) => {
  const env = { HOST: '0.0.0.0', UPSTREAMS: JSON.stringify([{ name: 'a', url: 'http://x', api_key: 'sk-a' }, { name: 'b', url: 'http://y' }]) }
  refuses(t, () => loadConfig({ env }), 'GATEWAY_API_KEYS', /managed mode/)
  t.ok(loadConfig({ env: { ...env, GATEWAY_API_KEYS: 'gw-1' } }))
})
