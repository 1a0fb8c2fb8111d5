import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { boolean, ConfigError, headerMap, headerToken, hostPorts, httpUrl, integer, list, oneOf, readableFile, redisUrl, secret, setting, text, type Setting } from './settings.js'
import { checkRedisSettings, type RedisTarget } from './redis-settings.js'

const MINUTE = 60_000
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]
const WEBSOCKET_MODES = ['proxy', 'reject'] as const
export type WebSocketMode = typeof WEBSOCKET_MODES[number]

/** The settings table: the one place that names YAML keys, environment variables and defaults. */
export const SETTINGS = {
  host: setting('server.host', 'HOST', '0.0.0.0', headerToken()),
  port: setting('server.port', 'PORT', 8080, integer(0, 65535)),
  clientHeadersTimeoutMs: setting('server.headers_timeout_ms', 'SERVER_HEADERS_TIMEOUT_MS', 30_000, integer(1_000, 10 * MINUTE)),
  clientRequestTimeoutMs: setting('server.request_timeout_ms', 'SERVER_REQUEST_TIMEOUT_MS', 5 * MINUTE, integer(0, 24 * 60 * MINUTE)),
  clientKeepAliveTimeoutMs: setting('server.keep_alive_timeout_ms', 'SERVER_KEEP_ALIVE_TIMEOUT_MS', 75_000, integer(1_000, 60 * MINUTE)),
  bodyLimitBytes: setting('server.body_limit_bytes', 'BODY_LIMIT', 64 * 1024 * 1024, integer(1024, 2 ** 31)),
  shutdownGraceMs: setting('server.shutdown_grace_ms', 'SHUTDOWN_GRACE_MS', 30_000, integer(0, 60 * MINUTE)),
  upstreamUrl: setting('upstream.url', 'UPSTREAM_URL', new URL('https://api.openai.com/v1'), httpUrl()),
  upstreamConnectTimeoutMs: setting('upstream.connect_timeout_ms', 'UPSTREAM_CONNECT_TIMEOUT_MS', 10_000, integer(100, 10 * MINUTE)),
  upstreamHeadersTimeoutMs: setting('upstream.headers_timeout_ms', 'UPSTREAM_HEADERS_TIMEOUT_MS', 10 * MINUTE, integer(0, 24 * 60 * MINUTE)),
  upstreamIdleTimeoutMs: setting('upstream.idle_timeout_ms', 'UPSTREAM_IDLE_TIMEOUT_MS', 10 * MINUTE, integer(0, 24 * 60 * MINUTE)),
  upstreamConnections: setting('upstream.connections', 'UPSTREAM_CONNECTIONS', 0, integer(0, 1_000_000)),
  originator: setting('session.originator', 'ORIGINATOR', 'codex_cli_rs', headerToken()),
  sessionMaxEntries: setting('session.max_entries', 'SESSION_MAX_ENTRIES', 100_000, integer(1, 100_000_000)),
  sessionIdleTtlSeconds: setting('session.idle_ttl_seconds', 'SESSION_IDLE_TTL_SECONDS', 24 * 60 * 60, integer(1, 365 * 24 * 60 * 60)),
  sessionReadBody: setting('session.read_body', 'SESSION_READ_BODY', true, boolean()),
  redisUrl: setting('redis.url', 'REDIS_URL', '', redisUrl()),
  redisTimeoutMs: setting('redis.timeout_ms', 'REDIS_TIMEOUT_MS', 250, integer(10, MINUTE)),
  redisKeyPrefix: setting('redis.key_prefix', 'REDIS_KEY_PREFIX', 'session-gateway:', text()),
  redisUsername: setting('redis.username', 'REDIS_USERNAME', '', text({ allowEmpty: true })),
  redisPassword: setting('redis.password', 'REDIS_PASSWORD', '', secret()),
  redisSentinels: setting('redis.sentinels', 'REDIS_SENTINELS', [] as string[], hostPorts()),
  redisSentinelName: setting('redis.sentinel_name', 'REDIS_SENTINEL_NAME', '', text({ allowEmpty: true })),
  redisClusterNodes: setting('redis.cluster_nodes', 'REDIS_CLUSTER_NODES', [] as string[], hostPorts()),
  redisTls: setting('redis.tls', 'REDIS_TLS', false, boolean()),
  redisTlsCaFile: setting('redis.tls_ca_file', 'REDIS_TLS_CA_FILE', '', readableFile()),
  redisTlsCertFile: setting('redis.tls_cert_file', 'REDIS_TLS_CERT_FILE', '', readableFile()),
  redisTlsKeyFile: setting('redis.tls_key_file', 'REDIS_TLS_KEY_FILE', '', readableFile()),
  redisTlsVerify: setting('redis.tls_verify', 'REDIS_TLS_VERIFY', true, boolean()),
  redisReplayMaxEntries: setting('redis.replay_max_entries', 'REDIS_REPLAY_MAX_ENTRIES', 10_000, integer(0, 10_000_000)),
  logLevel: setting('log.level', 'LOG_LEVEL', 'info' as LogLevel, oneOf(LOG_LEVELS)),
  websocket: setting('server.websocket', 'WEBSOCKET', 'proxy' as WebSocketMode, oneOf(WEBSOCKET_MODES)),
  maxHeaderBytes: setting('server.max_header_bytes', 'MAX_HEADER_BYTES', 16 * 1024, integer(1024, 1024 * 1024)),
  metricsPort: setting('metrics.port', 'METRICS_PORT', -1, integer(-1, 65535)),
  adminToken: setting('admin.token', 'ADMIN_TOKEN', '', secret()),
  upstreamApiKey: setting('upstream.api_key', 'OPENAI_API_KEY', '', secret()),
  gatewayApiKeys: setting('auth.gateway_api_keys', 'GATEWAY_API_KEYS', [] as string[], list()),
  allowUnauthenticated: setting('auth.allow_unauthenticated', 'ALLOW_UNAUTHENTICATED', false, boolean()),
  upstreamHeaders: setting('upstream.headers', 'UPSTREAM_HEADERS', {} as Record<string, string>, headerMap()),
  upstreamEnvHeaders: setting('upstream.env_headers', 'UPSTREAM_ENV_HEADERS', {} as Record<string, string>, headerMap()),
  rateLimitPerMinute: setting('limits.requests_per_minute', 'RATE_LIMIT_PER_MINUTE', 0, integer(0, 1_000_000_000))
} satisfies Record<string, Setting<unknown>>

type Values = { [K in keyof typeof SETTINGS]: typeof SETTINGS[K]['default'] }

export interface GatewayConfig {
  server: {
    host: string
    port: number
    /** Time a client has to send its request headers (slowloris guard). */
    headersTimeoutMs: number
    /** Time a client has to send its whole request, body included; 0 = none. */
    requestTimeoutMs: number
    keepAliveTimeoutMs: number
    /** Largest request body accepted; larger ones get 413 before anything goes upstream. */
    bodyLimitBytes: number
    /** How long in-flight requests may run on after SIGTERM before they are cut. */
    shutdownGraceMs: number
    /** WebSocket upgrades: `proxy` them upstream, or `reject` them with 426 so clients use HTTP. */
    websocket: WebSocketMode
  }
  upstream: {
    url: URL
    /** `https://api.openai.com` */
    origin: string
    /** `/v1`, without a trailing slash; `''` for a bare origin. */
    basePath: string
    /** `?api-version=…` carried by `upstream.url`, appended to every upstream path; `''` when none. */
    query: string
    connectTimeoutMs: number
    /** Time from sending the request to the upstream's response headers; 0 = none. */
    headersTimeoutMs: number
    /** Longest silence between two body chunks of a response; 0 = none. */
    idleTimeoutMs: number
    /** Connections per upstream origin; 0 = unlimited. */
    connections: number
  }
  session: {
    /** `originator` header sent upstream when the client sent none. */
    originator: string
    /** Most lineage bindings the in-memory store (or Redis's local copy) holds. */
    maxEntries: number
    /** A binding unused for this long is forgotten (memory) or expires (Redis key TTL). */
    idleTtlMs: number
    /** Read JSON bodies for previous_response_id / conversation / prompt_cache_key. */
    readBody: boolean
  }
  /** Shared session store, reached by url, Sentinels or Cluster nodes; none set keeps sessions in memory. */
  redis: RedisTarget & {
    /** Longest a request waits on Redis before deciding its session locally. */
    timeoutMs: number
    keyPrefix: string
    /** Most bindings made while Redis was away that are written to it when it returns; 0 = none. */
    replayMaxEntries: number
  }
  log: { level: LogLevel }
  /** Where clients' credentials come from and go. */
  auth: {
    /** Managed mode when set: the gateway sends this key upstream, clients present gateway keys. */
    upstreamApiKey: string
    /** Keys clients present (`Authorization: Bearer …`) in managed mode. */
    gatewayApiKeys: string[]
    /** Managed mode on a non-loopback host without gateway keys, on purpose. */
    allowUnauthenticated: boolean
  }
  /** Extra headers on every upstream request: fixed ones, then ones read from the environment. */
  upstreamHeaders: Record<string, string>
  admin: {
    /** Bearer token for /gateway/*; '' leaves those routes open on loopback and off elsewhere. */
    token: string
  }
  /** -1: /metrics on the main port; otherwise its own listener on this port (0 = any free one). */
  metricsPort: number
  limits: {
    /** Requests per minute per client key (or address); 0 = no limit. */
    requestsPerMinute: number
    maxHeaderBytes: number
  }
}

export interface ConfigSources {
  /** Path of a YAML file; its keys override the defaults. */
  file?: string | undefined
  /** Usually `process.env`; overrides the file. */
  env?: Record<string, string | undefined>
}

/** Reads defaults < YAML file < environment, validates every value once, and returns the typed config. */
export function loadConfig ({ file, env = {} }: ConfigSources = {}): GatewayConfig {
  const fromFile = file === undefined ? new Map<string, unknown>() : readYamlFile(file)
  const values: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(SETTINGS) as Array<[string, Setting<unknown>]>) {
    const envValue = env[spec.env]
    if (envValue !== undefined && envValue !== '') {
      values[name] = spec.parse(envValue, spec.env)
    } else if (fromFile.has(spec.path)) {
      values[name] = spec.parse(fromFile.get(spec.path), spec.path)
    } else {
      values[name] = spec.default
    }
  }
  const config = assemble(values as Values)
  for (const [header, variable] of Object.entries((values as Values).upstreamEnvHeaders)) {
    // Like codex's env_http_headers: a header whose variable is unset is not sent.
    const value = env[variable]
    if (value === undefined || value === '') continue
    // Checked here, not per request: a stray line break (common in mounted secrets) would
    // otherwise fail every upstream request. The value may be a secret, so it is not echoed.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) throw new ConfigError(variable, `holds a control character (a line break?), so it cannot be sent as the ${header} header`)
    config.upstreamHeaders[header] = value
  }
  checkManagedMode(config)
  checkRedisSettings(config.redis)
  return config
}

export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

function checkManagedMode ({ auth, server }: GatewayConfig): void {
  if (auth.upstreamApiKey === '' || auth.gatewayApiKeys.length > 0 || auth.allowUnauthenticated) return
  if (isLoopbackHost(server.host)) return
  throw new ConfigError('GATEWAY_API_KEYS', `OPENAI_API_KEY is set (managed mode) and HOST ${server.host} is not loopback: anyone who reaches the gateway would spend the key. Set GATEWAY_API_KEYS, or ALLOW_UNAUTHENTICATED=true to mean it, or unset OPENAI_API_KEY for pass-through mode (clients send their own keys)`)
}

function assemble (v: Values): GatewayConfig {
  const url = v.upstreamUrl
  return {
    server: {
      host: v.host,
      port: v.port,
      headersTimeoutMs: v.clientHeadersTimeoutMs,
      requestTimeoutMs: v.clientRequestTimeoutMs,
      keepAliveTimeoutMs: v.clientKeepAliveTimeoutMs,
      bodyLimitBytes: v.bodyLimitBytes,
      shutdownGraceMs: v.shutdownGraceMs,
      websocket: v.websocket
    },
    upstream: {
      url,
      origin: url.origin,
      basePath: url.pathname.replace(/\/+$/, ''),
      query: url.search.length > 1 ? url.search.slice(1) : '',
      connectTimeoutMs: v.upstreamConnectTimeoutMs,
      headersTimeoutMs: v.upstreamHeadersTimeoutMs,
      idleTimeoutMs: v.upstreamIdleTimeoutMs,
      connections: v.upstreamConnections
    },
    session: {
      originator: v.originator,
      maxEntries: v.sessionMaxEntries,
      idleTtlMs: v.sessionIdleTtlSeconds * 1000,
      readBody: v.sessionReadBody
    },
    redis: {
      url: v.redisUrl,
      username: v.redisUsername,
      password: v.redisPassword,
      sentinels: v.redisSentinels,
      sentinelName: v.redisSentinelName,
      clusterNodes: v.redisClusterNodes,
      tls: { enabled: v.redisTls || /^rediss:/i.test(v.redisUrl), caFile: v.redisTlsCaFile, certFile: v.redisTlsCertFile, keyFile: v.redisTlsKeyFile, verify: v.redisTlsVerify },
      timeoutMs: v.redisTimeoutMs,
      keyPrefix: v.redisKeyPrefix,
      replayMaxEntries: v.redisReplayMaxEntries
    },
    log: { level: v.logLevel },
    auth: { upstreamApiKey: v.upstreamApiKey, gatewayApiKeys: v.gatewayApiKeys, allowUnauthenticated: v.allowUnauthenticated },
    upstreamHeaders: { ...v.upstreamHeaders },
    admin: { token: v.adminToken },
    metricsPort: v.metricsPort,
    limits: { requestsPerMinute: v.rateLimitPerMinute, maxHeaderBytes: v.maxHeaderBytes }
  }
}

const KNOWN_PATHS = new Set(Object.values(SETTINGS).map((spec) => spec.path))

function readYamlFile (file: string): Map<string, unknown> {
  let source: string
  try {
    source = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let document: unknown
  try {
    document = parseYaml(source)
  } catch (err) {
    throw new ConfigError('--config', `${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  const flat = new Map<string, unknown>()
  if (document === null || document === undefined) return flat
  if (typeof document !== 'object' || Array.isArray(document)) throw new ConfigError('--config', `${file} must hold a mapping of settings`)
  flatten(document as Record<string, unknown>, '', flat)
  for (const path of flat.keys()) {
    // A typo in a key would otherwise be ignored silently and the default used.
    if (!KNOWN_PATHS.has(path)) throw new ConfigError(path, `unknown setting in ${file}`)
  }
  return flat
}

function flatten (node: Record<string, unknown>, prefix: string, into: Map<string, unknown>): void {
  for (const [key, value] of Object.entries(node)) {
    const path = prefix + key
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && !KNOWN_PATHS.has(path)) {
      flatten(value as Record<string, unknown>, path + '.', into)
    } else if (value !== null) {
      into.set(path, value)
    }
  }
}
