/** The shape of the `redis.*` settings, and the checks that span more than one of them. */
import type { GatewayConfig } from './load-config.js'
import { readCertificate, readPrivateKey } from './pem-files.js'
import { ConfigError } from './settings.js'

/** Where Redis is and how to log in: the `redis.*` settings. At most one of url, sentinels, clusterNodes is set. */
export type RedisTarget = GatewayConfig['redis']

/** Whether any `redis.*` setting asks for Redis at all. */
export function usesRedis (target: RedisTarget): boolean {
  return target.url !== '' || target.sentinels.length > 0 || target.clusterNodes.length > 0
}

/** TLS is on for `rediss://` URLs, or with `redis.tls: true` (Sentinel, Cluster). */
export function redisTlsEnabled (redis: RedisTarget): boolean {
  return redis.tls || /^rediss:/i.test(redis.url)
}

/**
 * Settings that are each valid but do not go together: two ways to reach Redis at once, a
 * Sentinel without its master's name, a client certificate without its key (or not its key), TLS
 * files with TLS off, Sentinel credentials without Sentinels; and TLS files that hold no PEM.
 */
export function checkRedisSettings (redis: RedisTarget): void {
  const ways = [
    ['redis.url', 'REDIS_URL', redis.url !== ''],
    ['redis.sentinels', 'REDIS_SENTINELS', redis.sentinels.length > 0],
    ['redis.cluster_nodes', 'REDIS_CLUSTER_NODES', redis.clusterNodes.length > 0]
  ] as const
  const set = ways.filter(([, , isSet]) => isSet)
  if (set.length > 1) {
    const named = set.map(([path, env]) => `${path} (${env})`).join(' and ')
    throw new ConfigError(set.map(([path]) => path).join(' + '), `${named} are set together: set only one way to reach Redis`)
  }
  if (redis.sentinels.length > 0 && redis.sentinelName === '') throw new ConfigError('redis.sentinel_name', 'is required with redis.sentinels (REDIS_SENTINELS): the name of the master the Sentinels watch')
  if (redis.sentinels.length === 0 && redis.sentinelName !== '') throw new ConfigError('redis.sentinels', 'is required with redis.sentinel_name (REDIS_SENTINEL_NAME)')
  checkSentinelCredentials(redis)
  if ((redis.tlsCertFile === '') !== (redis.tlsKeyFile === '')) throw new ConfigError(redis.tlsCertFile === '' ? 'redis.tls_cert_file' : 'redis.tls_key_file', 'a client certificate needs both redis.tls_cert_file and redis.tls_key_file')
  const tlsFile = redis.tlsCaFile !== '' ? 'redis.tls_ca_file' : redis.tlsCertFile !== '' ? 'redis.tls_cert_file' : undefined
  if (tlsFile !== undefined && !redisTlsEnabled(redis)) throw new ConfigError(tlsFile, 'is set but TLS is off: use a rediss:// URL, or redis.tls: true (REDIS_TLS) with Sentinel or Cluster')
  checkTlsFiles(redis)
}

/**
 * What the TLS files hold, read now: a CA file without a PEM certificate would fail every
 * handshake, and a wrong client certificate or key every connection, each time logged only as
 * Redis being unreachable while sessions are decided locally.
 */
function checkTlsFiles (redis: RedisTarget): void {
  if (redis.tlsCaFile !== '') readCertificate('redis.tls_ca_file', redis.tlsCaFile)
  if (redis.tlsCertFile !== '') readPrivateKey('redis.tls_key_file', redis.tlsKeyFile, readCertificate('redis.tls_cert_file', redis.tlsCertFile))
}

/**
 * The Sentinels' credentials are used only to ask Sentinels, and a user is sent only with a
 * password (AUTH user pass): either alone would be ignored without a word.
 */
function checkSentinelCredentials (redis: RedisTarget): void {
  const key = redis.sentinelPassword !== '' ? 'redis.sentinel_password' : redis.sentinelUsername !== '' ? 'redis.sentinel_username' : undefined
  if (key !== undefined && redis.sentinels.length === 0) throw new ConfigError(key, 'is set but redis.sentinels (REDIS_SENTINELS) is not: it is the Sentinels\' own password; the data nodes\' is redis.password (REDIS_PASSWORD)')
  if (redis.sentinelUsername !== '' && redis.sentinelPassword === '') throw new ConfigError('redis.sentinel_password', 'is required with redis.sentinel_username (REDIS_SENTINEL_USERNAME): a Sentinel ACL user logs in with a password')
}
