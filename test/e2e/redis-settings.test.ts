/**
 * The `redis.*` settings for production Redis (credentials, TLS, Sentinel, Cluster, replay):
 * read from YAML and the environment, checked at start, refused by name when wrong or when
 * they contradict each other; a password is never echoed. The CLI exits 2 on each refusal.
 * `npm test` builds first; run `npx tsc -p tsconfig.json` before running this file alone.
 */
import { spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { redisTlsEnabled } from '../../src/config/redis-settings.js'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config/load-config.js'
import { ConfigError } from '../../src/config/settings.js'
import { CERTIFICATE_PEM, KEY_PEM, OTHER_KEY_PEM } from '../support/pem-fixtures.js'

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js')

function refusal (load: () => unknown): ConfigError {
  try {
    load()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

function refuses (t: Test, env: Record<string, string>, key: string, problem: RegExp): void {
  const err = refusal(() => loadConfig({ env }))
  t.equal(err.key, key, `${JSON.stringify(env)}: blamed on ${key}`)
  t.match(err.message, problem)
}

t.test('defaults: no Redis, TLS verified when on, 10,000 bindings replayed', async (t) => {
  const { redis } = loadConfig({})
  t.same(redis, {
    url: '',
    username: '',
    password: '',
    sentinels: [],
    sentinelName: '',
    sentinelUsername: '',
    sentinelPassword: '',
    clusterNodes: [],
    tls: false,
    tlsCaFile: '',
    tlsCertFile: '',
    tlsKeyFile: '',
    tlsVerify: true,
    timeoutMs: 250,
    keyPrefix: 'session-gateway:',
    replayMaxEntries: 10_000
  })
})

t.test('settings from YAML and the environment', async (t) => {
  const dir = t.testdir({ 'ca.pem': CERTIFICATE_PEM })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `redis:\n  sentinels: [10.0.0.1:26379, "[::1]:26380"]\n  sentinel_name: main\n  tls: true\n  tls_ca_file: ${join(dir, 'ca.pem')}\n  replay_max_entries: 0\n`)
  const fromYaml = loadConfig({ file }).redis
  t.same(fromYaml.sentinels, ['10.0.0.1:26379', '[::1]:26380'])
  t.equal(fromYaml.sentinelName, 'main')
  t.same([fromYaml.tls, fromYaml.tlsCaFile, fromYaml.tlsCertFile, fromYaml.tlsKeyFile, fromYaml.tlsVerify], [true, join(dir, 'ca.pem'), '', '', true])
  t.equal(fromYaml.replayMaxEntries, 0)

  const fromEnv = loadConfig({ env: { REDIS_CLUSTER_NODES: 'a:7000, b:7001', REDIS_USERNAME: 'gw', REDIS_PASSWORD: 's3cret', REDIS_TLS_VERIFY: 'false' } }).redis
  t.same(fromEnv.clusterNodes, ['a:7000', 'b:7001'])
  t.equal(fromEnv.username, 'gw')
  t.equal(fromEnv.password, 's3cret')
  t.equal(fromEnv.tlsVerify, false)
  t.equal(redisTlsEnabled(loadConfig({ env: { REDIS_URL: 'rediss://r.example:6380' } }).redis), true, 'a rediss:// URL turns TLS on')

  writeFileSync(file, 'redis:\n  sentinels: [10.0.0.1:26379]\n  sentinel_name: main\n  sentinel_username: watcher\n  sentinel_password: from-yaml\n')
  t.match(loadConfig({ file }).redis, { sentinelUsername: 'watcher', sentinelPassword: 'from-yaml', password: '' }, "the Sentinels' credentials, apart from the data nodes'")
  t.match(loadConfig({ file, env: { REDIS_SENTINEL_PASSWORD: 'from-env' } }).redis, { sentinelPassword: 'from-env' }, 'the environment wins')
})

t.test("a REDIS_URL whose path is no database number is refused: it would quietly mean database 0", async (t) => {
  refuses(t, { REDIS_URL: 'redis://r:6379/abc' }, 'REDIS_URL', /path must be a database number.*"\/abc"/)
  refuses(t, { REDIS_URL: 'redis://r:6379/2/x' }, 'REDIS_URL', /path must be a database number/)
  for (const url of ['redis://r:6379', 'redis://r:6379/', 'redis://r:6379/2', 'rediss://u:p@r:6380/15']) t.equal(loadConfig({ env: { REDIS_URL: url } }).redis.url, url, `${url} is taken`)
})

t.test('conflicting ways to reach Redis are refused, naming the keys', async (t) => {
  refuses(t, { REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'a:7000' }, 'redis.url + redis.cluster_nodes', /REDIS_URL.*REDIS_CLUSTER_NODES.*only one way/)
  refuses(t, { REDIS_URL: 'redis://r:6379', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }, 'redis.url + redis.sentinels', /only one way/)
  refuses(t, { REDIS_URL: 'redis://r', REDIS_SENTINELS: 's:26379', REDIS_CLUSTER_NODES: 'a:7000' }, 'redis.url + redis.sentinels + redis.cluster_nodes', /only one way/)
  refuses(t, { REDIS_SENTINELS: 's:26379' }, 'redis.sentinel_name', /required with redis.sentinels/)
  refuses(t, { REDIS_URL: 'redis://r', REDIS_SENTINEL_NAME: 'm' }, 'redis.sentinels', /required with redis.sentinel_name/)
})

t.test("the Sentinels' credentials are refused without Sentinels, and a user without a password", async (t) => {
  refuses(t, { REDIS_URL: 'redis://r', REDIS_SENTINEL_PASSWORD: 'pw' }, 'redis.sentinel_password', /redis.sentinels \(REDIS_SENTINELS\) is not.*data nodes' is redis.password/)
  refuses(t, { REDIS_CLUSTER_NODES: 'a:7000', REDIS_SENTINEL_USERNAME: 'watcher' }, 'redis.sentinel_username', /redis.sentinels \(REDIS_SENTINELS\) is not/)
  refuses(t, { REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm', REDIS_SENTINEL_USERNAME: 'watcher' }, 'redis.sentinel_password', /required with redis.sentinel_username/)
  const err = refusal(() => loadConfig({ env: { REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm', REDIS_SENTINEL_PASSWORD: 'pw 9d2f' } }))
  t.equal(err.key, 'REDIS_SENTINEL_PASSWORD')
  t.notMatch(err.message, /9d2f/, 'a refused Sentinel password is not echoed either')
})

t.test('bad values are refused, naming the setting', async (t) => {
  const dir = t.testdir({ 'ca.pem': 'ca' })
  refuses(t, { REDIS_CLUSTER_NODES: 'a:7000,nope' }, 'REDIS_CLUSTER_NODES', /host:port, got "nope"/)
  refuses(t, { REDIS_SENTINELS: 'a:99999' }, 'REDIS_SENTINELS', /host:port/)
  refuses(t, { REDIS_URL: 'rediss://r', REDIS_TLS_CA_FILE: join(dir, 'missing.pem') }, 'REDIS_TLS_CA_FILE', /cannot read .*ENOENT/)
  refuses(t, { REDIS_URL: 'rediss://r', REDIS_TLS_CA_FILE: dir }, 'REDIS_TLS_CA_FILE', /cannot read .*EISDIR/)
  refuses(t, { REDIS_URL: 'redis://r', REDIS_TLS_CA_FILE: join(dir, 'ca.pem') }, 'redis.tls_ca_file', /TLS is off/)
  refuses(t, { REDIS_URL: 'rediss://r', REDIS_TLS_CERT_FILE: join(dir, 'ca.pem') }, 'redis.tls_key_file', /both/)
  refuses(t, { REDIS_TLS_VERIFY: 'maybe' }, 'REDIS_TLS_VERIFY', /true or false/)
  refuses(t, { REDIS_REPLAY_MAX_ENTRIES: '-1' }, 'REDIS_REPLAY_MAX_ENTRIES', /from 0/)
})

// Regression: REDIS_SENTINELS=redis_sentinel:26379 was refused as "expected host:port", though
// Docker Compose names services so and REDIS_URL=redis://redis_master:6379 was taken.
t.test('a Sentinel or Cluster host name with an underscore (a Compose service) is taken', async (t) => {
  t.same(loadConfig({ env: { REDIS_SENTINELS: 'redis_sentinel_1:26379,redis_sentinel_2:26379', REDIS_SENTINEL_NAME: 'm' } }).redis.sentinels, ['redis_sentinel_1:26379', 'redis_sentinel_2:26379'])
  t.same(loadConfig({ env: { REDIS_CLUSTER_NODES: 'redis_node:7000' } }).redis.clusterNodes, ['redis_node:7000'])
})

// Regression: only readability was checked, so a CA file holding no PEM certificate (a key, a
// DER file) started a gateway whose every handshake failed, logged only as Redis unreachable.
t.test('the Redis TLS files are checked at start: a PEM CA, and a client key that is the certificate\'s', async (t) => {
  const dir = t.testdir({ 'ca.pem': CERTIFICATE_PEM, 'cert.pem': CERTIFICATE_PEM, 'key.pem': KEY_PEM, 'other.key': OTHER_KEY_PEM, 'junk.pem': 'not a certificate' })
  const tls = { REDIS_URL: 'rediss://r:6380' }
  refuses(t, { ...tls, REDIS_TLS_CA_FILE: join(dir, 'junk.pem') }, 'redis.tls_ca_file', /junk\.pem does not hold a PEM certificate/)
  refuses(t, { ...tls, REDIS_TLS_CA_FILE: join(dir, 'key.pem') }, 'redis.tls_ca_file', /does not hold a PEM certificate/)
  writeFileSync(join(dir, 'ca.der'), new X509Certificate(CERTIFICATE_PEM).raw)
  refuses(t, { ...tls, REDIS_TLS_CA_FILE: join(dir, 'ca.der') }, 'redis.tls_ca_file', /ca\.der does not hold a PEM certificate/)
  refuses(t, { ...tls, REDIS_TLS_CERT_FILE: join(dir, 'junk.pem'), REDIS_TLS_KEY_FILE: join(dir, 'key.pem') }, 'redis.tls_cert_file', /does not hold a PEM certificate/)
  refuses(t, { ...tls, REDIS_TLS_CERT_FILE: join(dir, 'cert.pem'), REDIS_TLS_KEY_FILE: join(dir, 'junk.pem') }, 'redis.tls_key_file', /does not hold an unencrypted PEM private key/)
  refuses(t, { ...tls, REDIS_TLS_CERT_FILE: join(dir, 'cert.pem'), REDIS_TLS_KEY_FILE: join(dir, 'other.key') }, 'redis.tls_key_file', /is not the key of the client certificate/)
  const loaded = loadConfig({ env: { ...tls, REDIS_TLS_CA_FILE: join(dir, 'ca.pem'), REDIS_TLS_CERT_FILE: join(dir, 'cert.pem'), REDIS_TLS_KEY_FILE: join(dir, 'key.pem') } }).redis
  t.same([loaded.tlsCaFile, loaded.tlsCertFile, loaded.tlsKeyFile], [join(dir, 'ca.pem'), join(dir, 'cert.pem'), join(dir, 'key.pem')], 'good files are taken')
})

t.test('a refused password is never echoed', async (t) => {
  const err = refusal(() => loadConfig({ env: { REDIS_PASSWORD: 'top secret' } }))
  t.equal(err.key, 'REDIS_PASSWORD')
  t.notMatch(err.message, /top|secret/)
})

t.test('the CLI exits 2 on conflicting Redis settings, naming them, without echoing the password', { skip: existsSync(CLI) ? false : `${CLI} is missing: run npx tsc -p tsconfig.json (npm test does)` }, async (t) => {
  const run = spawnSync(process.execPath, [CLI], {
    encoding: 'utf8',
    timeout: 10_000,
    env: { PATH: process.env.PATH, REDIS_URL: 'redis://gw:pw-in-url-3f9a@127.0.0.1:1', REDIS_CLUSTER_NODES: '127.0.0.1:2', REDIS_PASSWORD: 'pw-setting-8e1c' }
  })
  t.equal(run.status, 2)
  t.match(run.stderr, /config redis\.url \+ redis\.cluster_nodes: .*only one way to reach Redis/)
  t.notMatch(run.stderr + run.stdout, /pw-in-url|pw-setting/, 'no password in the message')
})

// Regression: a password with a bare % in REDIS_URL (redis://gw:p%ss@host, not percent-encoded)
// passed the check, then threw URIError when the store decoded it: "cannot start: URI
// malformed", exit 1 (which a supervisor retries forever), naming no setting.
t.test('a REDIS_URL whose user or password has a % that starts no escape is refused by name, exit 2, not echoed', async (t) => {
  for (const url of ['redis://gw:p%ss-7a1c@r:6379', 'redis://g%w:pw-7a1c@r:6379', 'rediss://:100%-7a1c@r:6380/1']) {
    const err = refusal(() => loadConfig({ env: { REDIS_URL: url } }))
    t.equal(err.key, 'REDIS_URL', url)
    t.match(err.message, /user or password .*%25.*REDIS_PASSWORD/)
    t.notMatch(err.message, /7a1c/, 'the credentials are not echoed')
  }
  t.equal(loadConfig({ env: { REDIS_URL: 'redis://gw:p%25ss%40x@r:6379' } }).redis.url, 'redis://gw:p%25ss%40x@r:6379', 'escapes are taken')
  const run = spawnSync(process.execPath, [CLI], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH, REDIS_URL: 'redis://gw:p%ss-7a1c@127.0.0.1:1' } })
  t.equal(run.status, 2, 'the CLI exits 2: a configuration error')
  t.match(run.stderr, /config REDIS_URL: /)
  t.notMatch(run.stderr + run.stdout, /7a1c/)
})
