/** The shape of the `redis.*` settings, and the checks that span more than one of them. */
import { ConfigError } from './settings.js'

/** Where Redis is and how to log in: the `redis.*` settings. Exactly one of url, sentinels, clusterNodes is set. */
export interface RedisTarget {
  /** `redis://[user:pass@]host:port[/db]`, or `rediss://…` for TLS. */
  url: string
  /** ACL user and password; when set they win over the ones in `url`. */
  username: string
  password: string
  /** `host:port` of each Sentinel, asked for the master named `sentinelName`. */
  sentinels: string[]
  sentinelName: string
  /** `host:port` of some Cluster nodes; the rest are discovered. */
  clusterNodes: string[]
  tls: RedisTls
}

export interface RedisTls {
  /** On for `rediss://` URLs or `redis.tls: true` (Sentinel, Cluster). */
  enabled: boolean
  /** PEM files; '' for none (the system's CAs, no client certificate). */
  caFile: string
  certFile: string
  keyFile: string
  /** Check the server's certificate and name; off only for testing. */
  verify: boolean
}

/**
 * Settings that are each valid but do not go together: two ways to reach Redis at once, a
 * Sentinel without its master's name, a client certificate without its key, TLS files with TLS off.
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
  if ((redis.tls.certFile === '') !== (redis.tls.keyFile === '')) throw new ConfigError(redis.tls.certFile === '' ? 'redis.tls_cert_file' : 'redis.tls_key_file', 'a client certificate needs both redis.tls_cert_file and redis.tls_key_file')
  const tlsFile = redis.tls.caFile !== '' ? 'redis.tls_ca_file' : redis.tls.certFile !== '' ? 'redis.tls_cert_file' : undefined
  if (tlsFile !== undefined && !redis.tls.enabled) throw new ConfigError(tlsFile, 'is set but TLS is off: use a rediss:// URL, or redis.tls: true (REDIS_TLS) with Sentinel or Cluster')
}
