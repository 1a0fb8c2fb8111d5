import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { allSettings, loadConfig, type GatewayConfig } from '../../../src/config/load-config.js'
import { upstreamTarget } from '../../../src/upstream/upstream-path.js'
import { refuses, yamlFile } from '../../support/config-checks.js'

const EXAMPLE = join(import.meta.dirname, '..', '..', '..', 'config.example.yaml')

/** The config as plain data: `upstream.url` becomes its href, so deep equality really compares it. */
function plain (config: GatewayConfig): unknown {
  return JSON.parse(JSON.stringify(config))
}

t.test('defaults when nothing is set', async (t) => {
  const config = loadConfig({})
  t.equal(config.server.port, 8080)
  t.equal(config.server.host, '0.0.0.0')
  t.equal(config.upstream.url.href, 'https://api.openai.com/v1')
  t.strictSame(upstreamTarget(config.upstream.url), { origin: 'https://api.openai.com', basePath: '/v1', query: '' })
  t.equal(config.session.originator, 'codex_cli_rs')
  t.equal(config.log.level, 'info')
  t.strictSame(plain(loadConfig()), plain(config), 'no argument is the same as no sources')
  t.strictSame(plain(loadConfig({ env: {} })), plain(config), 'an empty environment is the same')
})

t.test('the YAML file overrides defaults, key by key', async (t) => {
  const file = yamlFile(t, [
    'server:',
    '  port: 9000',
    '  shutdown_grace_ms: 500',
    'upstream:',
    '  url: http://127.0.0.1:7000/base',
    '  connections: 4',
    'log:',
    '  level: DEBUG'
  ].join('\n'))
  const config = loadConfig({ file })
  t.equal(config.server.port, 9000)
  t.equal(config.server.shutdownGraceMs, 500)
  t.equal(upstreamTarget(config.upstream.url).origin, 'http://127.0.0.1:7000')
  t.equal(upstreamTarget(config.upstream.url).basePath, '/base')
  t.equal(config.upstream.connections, 4)
  t.equal(config.log.level, 'debug', 'levels are case-insensitive')
  t.equal(config.server.host, '0.0.0.0', 'keys the file leaves out keep their default')
  t.equal(config.session.originator, 'codex_cli_rs')
})

t.test('an empty YAML file or an empty section changes nothing', async (t) => {
  const defaults = plain(loadConfig({}))
  t.strictSame(plain(loadConfig({ file: yamlFile(t, '') })), defaults)
  t.strictSame(plain(loadConfig({ file: yamlFile(t, 'server:\nupstream:\n') })), defaults)
})

t.test('the environment overrides the YAML file; an empty variable counts as unset', async (t) => {
  const file = yamlFile(t, 'server:\n  port: 9000\n  host: 127.0.0.1\nsession:\n  originator: from_file\n')
  const config = loadConfig({ file, env: { PORT: '9100', ORIGINATOR: 'from_env', HOST: '' } })
  t.equal(config.server.port, 9100)
  t.equal(config.session.originator, 'from_env')
  t.equal(config.server.host, '127.0.0.1', 'HOST="" leaves the file value')
})

t.test('regression: a variable of only whitespace counts as unset too, not as an empty override of the file', async (t) => {
  const file = yamlFile(t, 'server:\n  port: 9000\nsession:\n  originator: from_file\nupstream:\n  env_headers:\n    X-Team: TEAM_ID\n')
  const config = loadConfig({ file, env: { PORT: '  ', ORIGINATOR: ' \t', TEAM_ID: ' ' } })
  t.equal(config.server.port, 9000, 'PORT=" " leaves the file value, where it was refused as not a number')
  t.equal(config.session.originator, 'from_file', 'ORIGINATOR=" \\t" leaves the file value, where it was an empty originator')
  t.notOk('X-Team' in config.upstream.headers, 'an env header whose variable is only whitespace is not sent')
})

t.test('UPSTREAM_URL with a path (Azure-style) becomes origin + base path', async (t) => {
  const azure = upstreamTarget(loadConfig({ env: { UPSTREAM_URL: 'https://x.openai.azure.com/openai/v1' } }).upstream.url)
  t.equal(azure.origin, 'https://x.openai.azure.com')
  t.equal(azure.basePath, '/openai/v1')
  t.equal(azure.query, '')

  t.equal(upstreamTarget(loadConfig({ env: { UPSTREAM_URL: 'https://x.example/v1/' } }).upstream.url).basePath, '/v1', 'trailing slash dropped')
  t.equal(upstreamTarget(loadConfig({ env: { UPSTREAM_URL: 'http://127.0.0.1:9999' } }).upstream.url).basePath, '', 'a bare origin has no base path')
})

t.test('UPSTREAM_URL with a query keeps it for every upstream request', async (t) => {
  const upstream = upstreamTarget(loadConfig({ env: { UPSTREAM_URL: 'https://x.openai.azure.com/openai/v1?api-version=preview' } }).upstream.url)
  t.equal(upstream.origin, 'https://x.openai.azure.com')
  t.equal(upstream.basePath, '/openai/v1')
  t.equal(upstream.query, 'api-version=preview')
})

t.test('bad environment values are refused, naming the variable', async (t) => {
  const bad: Array<[Record<string, string>, string, RegExp]> = [
    [{ PORT: 'abc' }, 'PORT', /whole number/],
    [{ PORT: '70000' }, 'PORT', /0 to 65535/],
    [{ PORT: '80.5' }, 'PORT', /whole number/],
    [{ UPSTREAM_URL: 'ftp://x' }, 'UPSTREAM_URL', /http/],
    [{ UPSTREAM_URL: 'not a url' }, 'UPSTREAM_URL', /not a URL/],
    [{ UPSTREAM_URL: 'https://user:secret@x.example/v1' }, 'UPSTREAM_URL', /credentials/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of/],
    [{ ORIGINATOR: 'codex cli' }, 'ORIGINATOR', /without spaces/],
    [{ UPSTREAM_IDLE_TIMEOUT_MS: '-1' }, 'UPSTREAM_IDLE_TIMEOUT_MS', /from 0/],
    [{ SHUTDOWN_GRACE_MS: '-5' }, 'SHUTDOWN_GRACE_MS', /from 0/]
  ]
  for (const [env, key, problem] of bad) refuses(t, () => loadConfig({ env }), key, problem)
})

// Regression: HOST=0.0.0.0:8080 (or [::1], or a URL) passed as a "printable" value and failed at
// listen time with ENOTFOUND, exit 1, which supervisors restart for ever instead of stopping on 2.
t.test('a HOST that can be no address or host name is refused; names and IPs pass', async (t) => {
  refuses(t, () => loadConfig({ env: { HOST: '0.0.0.0:8080' } }), 'HOST', /IP address .* or a host name, got "0\.0\.0\.0:8080"; the port goes in server\.port \(PORT\)/)
  refuses(t, () => loadConfig({ env: { HOST: '[::1]' } }), 'HOST', /without \[brackets\]/)
  refuses(t, () => loadConfig({ env: { HOST: 'http://localhost' } }), 'HOST', /host name/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server:\n  host: localhost:80\n') }), 'server.host', /host name/)
  for (const host of ['0.0.0.0', '::', '::1', 'fe80::1%eth0', 'localhost', 'gateway.internal.', 'redis_sidecar', 'no-such-host.invalid']) {
    t.equal(loadConfig({ env: { HOST: host } }).server.host, host, `${host} is accepted`)
  }
})

// Regression: any HOST starting with "127." counted as loopback, so a host name such as
// 127.example.com started managed mode without gateway keys (and would open the admin routes).
t.test('a host name that starts with 127. is not loopback: managed mode there needs gateway keys', async (t) => {
  refuses(t, () => loadConfig({ env: { OPENAI_API_KEY: 'sk-upstream', HOST: '127.example.com' } }), 'GATEWAY_API_KEYS', /HOST 127\.example\.com is not loopback/)
  t.equal(loadConfig({ env: { OPENAI_API_KEY: 'sk-upstream', HOST: '127.0.0.2' } }).server.host, '127.0.0.2', 'an address in 127/8 is loopback')
})

// Regression: PORT=-0 was kept as -0, a value no other setting's check expects.
t.test('a whole number written -0 is 0', async (t) => {
  t.ok(Object.is(loadConfig({ env: { PORT: '-0' } }).server.port, 0))
  t.ok(Object.is(loadConfig({ env: { METRICS_PORT: '-0' } }).metrics.port, 0))
})

// Regression: PORT=99999999999999999999 said "expected a whole number", which it is.
t.test('a whole number too large for a double is refused as out of range', async (t) => {
  refuses(t, () => loadConfig({ env: { PORT: '99999999999999999999' } }), 'PORT', /expected a number from 0 to 65535, got 99999999999999999999$/)
  refuses(t, () => loadConfig({ env: { BODY_LIMIT: '-99999999999999999999' } }), 'BODY_LIMIT', /from 1024 to 2147483648/)
})

t.test('bad YAML values are refused, naming the YAML path', async (t) => {
  const bad: Array<[string, string]> = [
    ['server:\n  port: abc\n', 'server.port'],
    ['server:\n  port: 70000\n', 'server.port'],
    ['upstream:\n  url: ftp://x\n', 'upstream.url'],
    ['upstream:\n  url: not a url\n', 'upstream.url'],
    ['upstream:\n  url: [a, b]\n', 'upstream.url'],
    ['log:\n  level: loud\n', 'log.level'],
    ['session:\n  originator: codex cli\n', 'session.originator'],
    ['upstream:\n  headers_timeout_ms: -1\n', 'upstream.headers_timeout_ms']
  ]
  for (const [text, key] of bad) refuses(t, () => loadConfig({ file: yamlFile(t, text) }), key)
})

t.test('a value from the environment is blamed on the variable even when the file has the key', async (t) => {
  const file = yamlFile(t, 'server:\n  port: 9000\n')
  refuses(t, () => loadConfig({ file, env: { PORT: 'abc' } }), 'PORT')
})

t.test('an unknown YAML key (a typo) is refused, naming it', async (t) => {
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server:\n  prot: 9000\n') }), 'server.prot', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'upsteam:\n  url: http://x.example\n') }), 'upsteam.url', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'port: 9000\n') }), 'port', /unknown setting/)
})

// Regression: keys with nothing after the colon were dropped before the unknown-key check, so a
// file with `serverr:` or `redis_url:` started with the defaults.
t.test('an unknown YAML key is refused even when it is left empty', async (t) => {
  refuses(t, () => loadConfig({ file: yamlFile(t, 'serverr:\n') }), 'serverr', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'redis_url:\n') }), 'redis_url', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'redis_url: ~\n') }), 'redis_url', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server:\n  prot:\n') }), 'server.prot', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'serverr: {}\n') }), 'serverr', /unknown setting/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server:\n  tls: {}\n') }), 'server.tls', /unknown setting/)
})

// Regression: `server: 8080` was refused as "unknown setting", which sent one looking for a typo
// in a name that is right; the value is not echoed (a Redis URL there may hold a password).
t.test('a YAML section given a value or a list is refused as the wrong shape, not as unknown', async (t) => {
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server: 8080\n') }), 'server', /is a section in .*: expected its settings under it \(server\.host: …\), got a single value/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'redis: [a, b]\n') }), 'redis', /got a list/)
  let message = ''
  try {
    loadConfig({ file: yamlFile(t, 'redis: redis://:pw-3f9a@r:6379\n') })
  } catch (err) {
    message = (err as Error).message
  }
  t.match(message, /config redis: is a section/)
  t.notMatch(message, /pw-3f9a/, 'the value is not echoed')
})

t.test('a known YAML key or section left empty keeps its defaults', async (t) => {
  const defaults = plain(loadConfig({}))
  t.strictSame(plain(loadConfig({ file: yamlFile(t, 'server:\n  port:\n  host: ~\nupstreams:\nupstream:\n  headers:\n') })), defaults)
  t.strictSame(plain(loadConfig({ file: yamlFile(t, 'server: {}\nredis: {}\n') })), defaults)
})

t.test('an unreadable file is refused', async (t) => {
  const dir = t.testdir({})
  const missing = join(dir, 'missing.yaml')
  refuses(t, () => loadConfig({ file: missing }), '--config', /cannot read .*missing\.yaml: ENOENT/)
  refuses(t, () => loadConfig({ file: dir }), '--config', /cannot read/)
})

t.test('invalid YAML, or YAML that is not a mapping, is refused', async (t) => {
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server:\n  port: [9000\n') }), '--config', /not valid YAML/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'server:\n  port: 1\n  port: 2\n') }), '--config', /not valid YAML/)
  refuses(t, () => loadConfig({ file: yamlFile(t, '- port\n- 9000\n') }), '--config', /mapping/)
  refuses(t, () => loadConfig({ file: yamlFile(t, 'just words\n') }), '--config', /mapping/)
})

t.test('config.example.yaml loads to exactly the defaults', async (t) => {
  t.strictSame(plain(loadConfig({ file: EXAMPLE })), plain(loadConfig({})))
})

t.test('config.example.yaml documents every setting: key, env var and default', async (t) => {
  const comments = documentedKeys(readFileSync(EXAMPLE, 'utf8'))
  const documented = new Set(comments.keys())
  for (const spec of allSettings()) {
    const comment = comments.get(spec.path)
    if (comment === undefined) {
      t.fail(`${spec.key}: ${spec.path} is not in config.example.yaml`)
      continue
    }
    documented.delete(spec.path)
    t.match(comment, new RegExp(`Env: ${spec.env}\\b`), `${spec.path}: names ${spec.env}`)
    t.match(comment, new RegExp(`Default: ${escapeRegExp(defaultText(spec.default))}(\\s|$)`), `${spec.path}: states its default`)
    t.ok(comment.replace(/Env: .*/s, '').trim().length > 0, `${spec.path}: says what it does`)
  }
  t.strictSame([...documented], [], 'no key in the example that the table does not know')
})

t.test('config.example.yaml states the bounds of every numeric setting, as the code holds them', async (t) => {
  const comments = documentedKeys(readFileSync(EXAMPLE, 'utf8'))
  for (const spec of allSettings()) {
    if (typeof spec.default !== 'number') continue
    const range = /(-?\d+) to (-?\d+)/.exec(comments.get(spec.path) ?? '')
    if (range === null) {
      t.fail(`${spec.path}: its comment states no range ("MIN to MAX")`)
      continue
    }
    const [min, max] = [Number(range[1]), Number(range[2])]
    // The stated edges are accepted and the values just past them refused: the code's bounds, exactly.
    t.doesNotThrow(() => spec.parse(min, spec.path), `${spec.path}: ${min} is accepted`)
    t.doesNotThrow(() => spec.parse(max, spec.path), `${spec.path}: ${max} is accepted`)
    t.throws(() => spec.parse(min - 1, spec.path), `${spec.path}: ${min - 1} is refused`)
    t.throws(() => spec.parse(max + 1, spec.path), `${spec.path}: ${max + 1} is refused`)
  }
})

/** A default as the example writes it: `""` for an empty string, JSON for lists and maps. */
function defaultText (value: unknown): string {
  if (value instanceof URL) return value.href
  if (value === '' || typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Maps each `section.key` of the example to the comment lines right above it. The file is
 * written in one shape (sections at column 0, keys indented two spaces, comments above keys).
 */
function documentedKeys (text: string): Map<string, string> {
  const keys = new Map<string, string>()
  let section = ''
  let comment: string[] = []
  let topComment: string[] = []
  for (const line of text.split('\n')) {
    // A top-level setting (`upstreams: []`) is documented by the column-0 comments above it.
    const topMatch = /^(\w+):\s*\S/.exec(line)
    const topCommentMatch = /^# ?(.*)$/.exec(line)
    if (topMatch !== null) keys.set(topMatch[1]!, topComment.join(' '))
    topComment = topCommentMatch === null ? [] : [...topComment, topCommentMatch[1]!]
    const sectionMatch = /^(\w+):\s*$/.exec(line)
    const keyMatch = /^ {2}(\w+):/.exec(line)
    const commentMatch = /^ {2}# ?(.*)$/.exec(line)
    if (sectionMatch !== null) {
      section = sectionMatch[1]!
      comment = []
    } else if (commentMatch !== null) {
      comment.push(commentMatch[1]!)
    } else if (keyMatch !== null) {
      keys.set(`${section}.${keyMatch[1]!}`, comment.join(' '))
      comment = []
    } else {
      comment = []
    }
  }
  return keys
}

t.test("the README's settings table names every setting, with its YAML key, and no other", async (t) => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8')
  const rows = new Map<string, string>()
  for (const match of readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| `([a-z_.]+)` \|/gm)) rows.set(match[1]!, match[2]!)
  for (const spec of allSettings()) {
    t.equal(rows.get(spec.env), spec.path, `${spec.env} is in the table as ${spec.path}`)
  }
  const known = new Set(allSettings().map((spec) => spec.env))
  t.same([...rows.keys()].filter((env) => !known.has(env)), [], 'no row for a setting the code does not have')
})

t.test("the README's settings table states each setting's default as the code has it", async (t) => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8')
  const defaults = new Map<string, string>()
  for (const match of readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| `[a-z_.]+` \| ([^|]+) \|/gm)) defaults.set(match[1]!, match[2]!.trim())
  for (const spec of allSettings()) {
    // An empty string or list is written "(none)"; anything else as the example writes it.
    const empty = spec.default === '' || (Array.isArray(spec.default) && spec.default.length === 0)
    const expected = empty ? ['(none)', '`[]`'] : ['`' + defaultText(spec.default).replace(/^"|"$/g, '') + '`']
    t.ok(expected.includes(defaults.get(spec.env) ?? ''), `${spec.env}: the table says ${defaults.get(spec.env) ?? 'nothing'}, the code ${expected.join(' or ')}`)
  }
})
