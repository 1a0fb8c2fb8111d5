import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { redisTlsEnabled, type RedisTarget } from '../config/redis-settings.js'

/** A single Redis (direct or found through Sentinel) or a Redis Cluster: the store uses either alike. */
export type RedisClient = Redis | Cluster


/**
 * Connects to Redis as `target` describes. Commands fail at once while disconnected (no
 * offline queue, no retries) and after `timeoutMs`: a request must never wait on Redis longer
 * than that. Reconnecting goes on in the background for as long as the process runs, and
 * starts on a `READONLY` answer too (reconnectOnError).
 */
export function createRedisClient (target: RedisTarget, timeoutMs: number): RedisClient {
  const retry = (attempt: number): number => Math.min(attempt * 200, 2_000)
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, 1_000),
    lazyConnect: false,
    reconnectOnError: connectedToAReplica,
    ...credentials(target),
    ...(redisTlsEnabled(target) ? { tls: tlsOptions(target) } : {})
  }
  if (target.clusterNodes.length > 0) {
    const options: ClusterOptions = { enableOfflineQueue: false, clusterRetryStrategy: retry, slotsRefreshTimeout: Math.max(timeoutMs, 1_000), redisOptions: common }
    return new Cluster(target.clusterNodes.map(hostPort), options)
  }
  if (target.sentinels.length > 0) {
    return new Redis({
      ...common,
      retryStrategy: retry,
      sentinels: target.sentinels.map(hostPort),
      name: target.sentinelName,
      sentinelRetryStrategy: retry,
      // Without it a Sentinel that accepts connections but answers nothing (hung, stopped) is
      // waited on forever, and the Sentinels after it in the list are never asked.
      sentinelCommandTimeout: Math.max(timeoutMs, 1_000),
      // The Sentinels' own credentials: the data nodes' (`credentials`) are not sent to them.
      ...(target.sentinelUsername !== '' ? { sentinelUsername: target.sentinelUsername } : {}),
      ...(target.sentinelPassword !== '' ? { sentinelPassword: target.sentinelPassword } : {}),
      // Sentinels speak TLS when the data nodes do (one CA for both).
      ...(redisTlsEnabled(target) ? { enableTLSForSentinelMode: true, sentinelTLS: tlsOptions(target) } : {})
    })
  }
  const client = new Redis({ ...fromUrl(target.url), ...common, retryStrategy: retry })
  // A SELECT Redis refuses is only an error event to ioredis, which then goes on in database 0:
  // another database than the one meant. Dropped and retried instead, as refused credentials are.
  client.on('error', (err: Error) => { if (refusedDatabase(err)) client.disconnect(true) })
  return client
}

/** Redis refused the database `redis.url` names (its SELECT): no such database, or a Cluster node. */
function refusedDatabase (err: Error): boolean {
  return /\bDB index\b|\bSELECT is not allowed\b/.test(err.message)
}

/**
 * `READONLY`: the connection is to a replica, typically a primary demoted by a failover behind
 * an address that now names another server (a managed Redis's endpoint, a DNS name, a proxy).
 * The connection stays open, so without a reconnect every write would fail on it for good.
 * 1: reconnect, and the command fails as any does while Redis is away (its binding is replayed).
 */
function connectedToAReplica (err: Error): 1 | false {
  return err.message.startsWith('READONLY') ? 1 : false
}

/**
 * Bytes this process has read from Redis so far, over every connection the client holds (each
 * node's, in a Cluster): it grows whenever Redis's answers are read. A reconnect starts a
 * socket's count anew, so compare for change, not for growth.
 */
export function bytesReadFromRedis (client: RedisClient): number {
  const nodes = client instanceof Cluster ? client.nodes() : [client]
  let total = 0
  for (const node of nodes) total += (node.stream as Socket | undefined)?.bytesRead ?? 0
  return total
}

/**
 * An error of the Redis client as the outage's reason (logged, and in `/readyz`): a database or
 * credentials refused are named by the settings that hold them, telling a Sentinel's refusal (which the
 * client reports as "All sentinels are unreachable … Last error: WRONGPASS …") from a data
 * node's; anything else is its code or message. Neither ever holds the password itself.
 */
export function outageReason (err: Error & { code?: string }): string {
  if (refusedDatabase(err)) return `Redis refused the database (${err.message}): check redis.url (REDIS_URL), whose path is the database number`
  const refused = /\b(NOAUTH|WRONGPASS)\b/.exec(err.message)?.[1]
  if (refused === undefined) return err.code ?? err.message
  return /^All sentinels are unreachable/.test(err.message)
    ? `the Sentinels refused the gateway's credentials (${refused}): check redis.sentinel_password (REDIS_SENTINEL_PASSWORD) and redis.sentinel_username (REDIS_SENTINEL_USERNAME)`
    : `Redis refused the gateway's credentials (${refused}): check redis.password (REDIS_PASSWORD) and redis.username (REDIS_USERNAME), or the URL's`
}

/**
 * Host, port and database from `redis.url`. Parsed here rather than by ioredis, whose URL
 * values would win over the explicit settings; credentials are taken by `credentials`.
 */
function fromUrl (url: string): RedisOptions {
  const parsed = new URL(url)
  const db = Number(parsed.pathname.slice(1) || 0)
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(parsed.port || 6379),
    ...(Number.isSafeInteger(db) && db > 0 ? { db } : {})
  }
}

/** The settings' user and password, else the URL's; none when neither has them. */
function credentials (target: RedisTarget): Pick<RedisOptions, 'username' | 'password'> {
  const url = target.url === '' ? undefined : new URL(target.url)
  const username = target.username !== '' ? target.username : decodeURIComponent(url?.username ?? '')
  const password = target.password !== '' ? target.password : decodeURIComponent(url?.password ?? '')
  return {
    ...(username !== '' ? { username } : {}),
    ...(password !== '' ? { password } : {})
  }
}

function tlsOptions (tls: RedisTarget): ConnectionOptions {
  const file = (path: string): Buffer | undefined => path === '' ? undefined : readFileSync(path)
  const ca = file(tls.tlsCaFile)
  const cert = file(tls.tlsCertFile)
  const key = file(tls.tlsKeyFile)
  return {
    rejectUnauthorized: tls.tlsVerify,
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {})
  }
}

/** `host:port` or `[v6]:port`, already validated by the settings. */
function hostPort (address: string): { host: string, port: number } {
  const at = address.lastIndexOf(':')
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(at + 1)) }
}
