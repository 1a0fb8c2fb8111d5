import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isIPv4 } from 'node:net'
import { checkRedisSettings } from './redis-settings.js'
import { resolveUpstreams } from './resolve-upstreams.js'
import { checkRoutingSettings, loneUpstreamRoutingWarnings } from './routing-settings.js'
import { checkServerSettings } from './server-settings.js'
import { tracingFromEnv, type TracingConfig } from './tracing-env.js'
import { bareOriginWarnings, upstreamList, upstreamListWarnings, type UpstreamSpec } from './upstream-list.js'
import { boolean, ConfigError, type ConfigWarning, headerMap, headerToken, hostPorts, httpUrl, integer, list, listenHost, oneOf, readableFile, redisUrl, secret, setting, text, type Setting } from './settings.js'

const MINUTE = 60_000
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]
const WEBSOCKET_MODES = ['proxy', 'reject'] as const
export type WebSocketMode = typeof WEBSOCKET_MODES[number]

/**
 * The settings table: the one place that names YAML keys, environment variables and defaults.
 * It is shaped like the YAML file, and the config object is shaped like it: YAML
 * `server.headers_timeout_ms` is `config.server.headersTimeoutMs`, the same name in two cases.
 */
export const SETTINGS = {
  server: {
    host: setting('HOST', '0.0.0.0', listenHost()),
    port: setting('PORT', 8080, integer(0, 65535)),
    /** Time a client has to send its request headers (slowloris guard). */
    headersTimeoutMs: setting('SERVER_HEADERS_TIMEOUT_MS', 30_000, integer(1_000, 10 * MINUTE)),
    /** Time a client has to send its whole request, body included; 0 = none. */
    requestTimeoutMs: setting('SERVER_REQUEST_TIMEOUT_MS', 5 * MINUTE, integer(0, 24 * 60 * MINUTE)),
    keepAliveTimeoutMs: setting('SERVER_KEEP_ALIVE_TIMEOUT_MS', 75_000, integer(1_000, 60 * MINUTE)),
    /** Largest request body accepted; larger ones get 413 before anything goes upstream. */
    bodyLimitBytes: setting('BODY_LIMIT', 64 * 1024 * 1024, integer(1024, 2 ** 31)),
    maxHeaderBytes: setting('MAX_HEADER_BYTES', 16 * 1024, integer(1024, 1024 * 1024)),
    /** After SIGTERM, how long to go on accepting and serving while /readyz answers 503 (load balancers stop sending). */
    shutdownDelayMs: setting('SHUTDOWN_DELAY_MS', 0, integer(0, 10 * MINUTE)),
    /** How long in-flight requests may run on after the delay before they are cut. */
    shutdownGraceMs: setting('SHUTDOWN_GRACE_MS', 30_000, integer(0, 60 * MINUTE)),
    /** WebSocket upgrades: `proxy` them upstream, or `reject` them with 426 so clients use HTTP. */
    websocket: setting('WEBSOCKET', 'proxy' as WebSocketMode, oneOf(WEBSOCKET_MODES))
  },
  upstream: {
    url: setting('UPSTREAM_URL', new URL('https://api.openai.com/v1'), httpUrl()),
    connectTimeoutMs: setting('UPSTREAM_CONNECT_TIMEOUT_MS', 10_000, integer(100, 10 * MINUTE)),
    /** Time from sending the request to the upstream's response headers; 0 = none. */
    headersTimeoutMs: setting('UPSTREAM_HEADERS_TIMEOUT_MS', 10 * MINUTE, integer(0, 24 * 60 * MINUTE)),
    /** Longest silence between two body chunks of a response; 0 = none. */
    idleTimeoutMs: setting('UPSTREAM_IDLE_TIMEOUT_MS', 10 * MINUTE, integer(0, 24 * 60 * MINUTE)),
    /** Connections per upstream origin; 0 = unlimited. */
    connections: setting('UPSTREAM_CONNECTIONS', 0, integer(0, 1_000_000)),
    /** Managed mode when set: the gateway sends this key upstream, clients present gateway keys. */
    apiKey: setting('OPENAI_API_KEY', '', secret()),
    /** Extra headers on every upstream request; after loading, also those of `envHeaders` whose variable is set. */
    headers: setting('UPSTREAM_HEADERS', {} as Record<string, string>, headerMap()),
    envHeaders: setting('UPSTREAM_ENV_HEADERS', {} as Record<string, string>, headerMap())
  },
  /** Several upstreams (a YAML list at the top level; env: a JSON array). Empty: the one at `upstream.url`. */
  upstreams: setting('UPSTREAMS', [] as UpstreamSpec[], upstreamList()),
  routing: {
    /** Most upstreams one request is tried on, when the earlier ones fail before answering. */
    maxAttempts: setting('UPSTREAM_MAX_ATTEMPTS', 3, integer(1, 100)),
    /** Largest request body kept in memory so it can be sent again to another upstream; 0 = never retry a body. */
    replayBodyBytes: setting('UPSTREAM_REPLAY_BODY_BYTES', 8 * 1024 * 1024, integer(0, 2 ** 31)),
    /** Failures in a row that eject an upstream (connect error, timeout, reset before headers, 5xx, 429). */
    failuresToEject: setting('UPSTREAM_FAILURES_TO_EJECT', 3, integer(1, 1000)),
    /** First ejection's length; each ejection in a row doubles it, up to `maxCooldownMs` (which it may not exceed). */
    cooldownMs: setting('UPSTREAM_COOLDOWN_MS', 5_000, integer(100, 24 * 60 * MINUTE)),
    maxCooldownMs: setting('UPSTREAM_MAX_COOLDOWN_MS', MINUTE, integer(100, 24 * 60 * MINUTE))
  },
  session: {
    /** `originator` header sent upstream when the client sent none. */
    originator: setting('ORIGINATOR', 'codex_cli_rs', headerToken()),
    /** Most lineage bindings the in-memory store (or Redis's local copy) holds. */
    maxEntries: setting('SESSION_MAX_ENTRIES', 100_000, integer(1, 100_000_000)),
    /** Bytes the in-memory store (or Redis's local copy) may hold; whole sessions are evicted past it. */
    maxBytes: setting('SESSION_MAX_BYTES', 64 * 1024 * 1024, integer(64 * 1024, 2 ** 40)),
    /** A binding unused for this long is forgotten (memory) or expires (Redis key TTL). */
    idleTtlSeconds: setting('SESSION_IDLE_TTL_SECONDS', 24 * 60 * 60, integer(1, 365 * 24 * 60 * 60)),
    /** Read JSON bodies for previous_response_id / conversation / prompt_cache_key. */
    readBody: setting('SESSION_READ_BODY', true, boolean())
  },
  cache: {
    /** Read the request's model, instructions, tools, output schema and reasoning effort as its body streams upstream, for `prefix_changed`. */
    analysis: setting('CACHE_ANALYSIS', true, boolean()),
    /** A prompt below this many input tokens can't be cached: its outcome is `n/a`. */
    minTokens: setting('CACHE_MIN_TOKENS', 1024, integer(0, 10_000_000)),
    /** A gap longer than this since the session's previous call explains a miss as `idle`. */
    idleSeconds: setting('CACHE_IDLE_SECONDS', 300, integer(0, 7 * 24 * 60 * 60)),
    /** Model calls kept per session (the newest), in the session store. */
    recordsPerSession: setting('CACHE_RECORDS_PER_SESSION', 100, integer(1, 10_000))
  },
  redis: {
    /** Shared session store; '' keeps sessions in memory. */
    url: setting('REDIS_URL', '', redisUrl()),
    /** Longest a request waits on Redis before deciding its session locally. */
    timeoutMs: setting('REDIS_TIMEOUT_MS', 250, integer(10, MINUTE)),
    keyPrefix: setting('REDIS_KEY_PREFIX', 'session-gateway:', text()),
    /** ACL user and password; when set they win over the ones in `url`. */
    username: setting('REDIS_USERNAME', '', text({ allowEmpty: true })),
    password: setting('REDIS_PASSWORD', '', secret()),
    /** `host:port` of each Sentinel, asked for the master named `sentinelName`. */
    sentinels: setting('REDIS_SENTINELS', [] as string[], hostPorts()),
    sentinelName: setting('REDIS_SENTINEL_NAME', '', text({ allowEmpty: true })),
    /** The Sentinels' own ACL user and password (their `requirepass`), not the data nodes'. */
    sentinelUsername: setting('REDIS_SENTINEL_USERNAME', '', text({ allowEmpty: true })),
    sentinelPassword: setting('REDIS_SENTINEL_PASSWORD', '', secret()),
    /** `host:port` of some Cluster nodes; the rest are discovered. */
    clusterNodes: setting('REDIS_CLUSTER_NODES', [] as string[], hostPorts()),
    /** TLS for Sentinel or Cluster (a `rediss://` URL turns it on by itself). */
    tls: setting('REDIS_TLS', false, boolean()),
    /** PEM files; '' for none (the system's CAs, no client certificate). */
    tlsCaFile: setting('REDIS_TLS_CA_FILE', '', readableFile()),
    tlsCertFile: setting('REDIS_TLS_CERT_FILE', '', readableFile()),
    tlsKeyFile: setting('REDIS_TLS_KEY_FILE', '', readableFile()),
    /** Check the server's certificate and name; off only for testing. */
    tlsVerify: setting('REDIS_TLS_VERIFY', true, boolean()),
    /** Most bindings made while Redis was away that are written to it when it returns; 0 = none. */
    replayMaxEntries: setting('REDIS_REPLAY_MAX_ENTRIES', 10_000, integer(0, 10_000_000))
  },
  auth: {
    /** Keys clients present (`Authorization: Bearer …`) in managed mode. */
    gatewayApiKeys: setting('GATEWAY_API_KEYS', [] as string[], list()),
    /** Managed mode on a non-loopback host without gateway keys, on purpose. */
    allowUnauthenticated: setting('ALLOW_UNAUTHENTICATED', false, boolean())
  },
  limits: {
    /** Requests per minute per client key (or address); 0 = no limit. */
    requestsPerMinute: setting('RATE_LIMIT_PER_MINUTE', 0, integer(0, 1_000_000_000))
  },
  metrics: {
    /** -1: /metrics on the main port; otherwise its own listener on this port (0 = any free one). */
    port: setting('METRICS_PORT', -1, integer(-1, 65535))
  },
  admin: {
    /** Bearer token for /gateway/*; '' leaves those routes open on loopback and off elsewhere. */
    token: setting('ADMIN_TOKEN', '', secret())
  },
  log: {
    level: setting('LOG_LEVEL', 'info' as LogLevel, oneOf(LOG_LEVELS))
  }
} satisfies Record<string, Record<string, Setting<unknown>> | Setting<unknown>>

type Table = typeof SETTINGS

/**
 * The typed config: the settings table with each setting replaced by its value (a top-level
 * setting, `upstreams`, is its value directly), plus tracing, which comes from the standard
 * OTEL_* variables only (tracing-env.ts), and the warnings about settings that do nothing.
 */
export type GatewayConfig = {
  [S in keyof Table]: Table[S] extends Setting<infer V> ? V : { [K in keyof Table[S]]: Table[S][K] extends Setting<infer V> ? V : never }
} & {
  tracing: TracingConfig
  /** Settings that do nothing in this config, logged at start; none when the config was built by hand. */
  warnings?: ConfigWarning[]
}

/** What `loadConfig` returns: its warnings always listed (empty when every setting does something). */
export type LoadedConfig = GatewayConfig & { warnings: ConfigWarning[] }

/** A setting with its YAML path (`server.headers_timeout_ms`) and where its value goes in the config. */
export interface NamedSetting extends Setting<unknown> {
  path: string
  section: string
  key: string
}

/** Every setting, flat, in table order: for the loader, the docs checks and error messages. */
export function allSettings (): NamedSetting[] {
  const out: NamedSetting[] = []
  for (const [section, entries] of Object.entries(SETTINGS)) {
    if (isSetting(entries)) {
      out.push({ ...entries, section, key: '', path: section })
      continue
    }
    for (const [key, spec] of Object.entries(entries as Record<string, Setting<unknown>>)) {
      out.push({ ...spec, section, key, path: `${section}.${snakeCase(key)}` })
    }
  }
  return out
}

function isSetting (value: unknown): value is Setting<unknown> {
  return typeof (value as Setting<unknown>).parse === 'function'
}

function snakeCase (camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())
}

const NAMED = allSettings()
const ROUTING_SETTINGS = NAMED.filter((spec) => spec.section === 'routing')
const KNOWN_PATHS = new Set(NAMED.map((spec) => spec.path))
/** `server`, `upstream`, …: a section written with nothing under it (`server:`) is empty, not unknown. */
const KNOWN_SECTIONS = new Set(NAMED.filter((spec) => spec.key !== '').map((spec) => spec.section))

/** A setting as messages name it, YAML path and environment variable: `server.port (PORT)`. */
export function settingName (path: string): string {
  const spec = NAMED.find((candidate) => candidate.path === path)
  return spec === undefined ? path : `${path} (${spec.env})`
}

export interface ConfigSources {
  /** Path of a YAML file; its keys override the defaults. */
  file?: string | undefined
  /** Usually `process.env`; overrides the file. */
  env?: Record<string, string | undefined>
}

/** Reads defaults < YAML file < environment, validates every value once, and returns the typed config. */
export function loadConfig ({ file, env = {} }: ConfigSources = {}): LoadedConfig {
  const fromFile = file === undefined ? new Map<string, unknown>() : readYamlFile(file)
  const config: Record<string, unknown> = {}
  /** Which key set each value that is not a default: YAML path → the env var or YAML path. */
  const setBy = new Map<string, string>()
  for (const spec of NAMED) {
    const envValue = envSetting(env, spec.env)
    let value: unknown
    if (envValue !== undefined) value = spec.parse(envValue, spec.env)
    else if (fromFile.has(spec.path)) value = spec.parse(fromFile.get(spec.path), spec.path)
    else value = copyOf(spec.default)
    if (envValue !== undefined) setBy.set(spec.path, spec.env)
    else if (fromFile.has(spec.path)) setBy.set(spec.path, spec.path)
    if (spec.key === '') config[spec.section] = value
    else ((config[spec.section] ??= {}) as Record<string, unknown>)[spec.key] = value
  }
  const typed = config as unknown as LoadedConfig
  typed.tracing = tracingFromEnv(env)
  addEnvHeaders(typed.upstream, env)
  const listKey = setBy.get('upstreams') ?? 'upstreams'
  const urlKeys = typed.upstreams.length === 0 ? [setBy.get('upstream.url') ?? 'upstream.url'] : typed.upstreams.map((_, i) => `${listKey}[${i}].url`)
  typed.upstreams = resolveUpstreams(typed, env, {
    url: setBy.get('upstream.url'),
    upstreams: setBy.get('upstreams'),
    defaultUrl: SETTINGS.upstream.url.default
  })
  typed.warnings = [
    ...upstreamListWarnings(typed.upstreams, listKey),
    ...bareOriginWarnings(typed.upstreams, urlKeys),
    ...loneUpstreamRoutingWarnings(typed, ROUTING_SETTINGS, setBy)
  ]
  checkServerSettings(typed, setBy)
  checkRoutingSettings(typed, setBy)
  checkManagedMode(typed)
  checkRedisSettings(typed.redis)
  return typed
}

/**
 * A variable's value, or undefined when it is unset, empty or only whitespace: compose files and
 * Kubernetes manifests leave `VAR=` or `VAR: " "` behind, and neither should replace the file's value.
 */
function envSetting (env: Record<string, string | undefined>, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value
}

/** Defaults are shared by every load: objects are copied so a config can't change them. */
function copyOf (value: unknown): unknown {
  if (Array.isArray(value)) return [...value]
  if (value !== null && typeof value === 'object' && !(value instanceof URL)) return { ...value }
  return value
}

function addEnvHeaders (upstream: GatewayConfig['upstream'], env: Record<string, string | undefined>): void {
  for (const [header, variable] of Object.entries(upstream.envHeaders)) {
    // Like codex's env_http_headers: a header whose variable is unset is not sent.
    const value = envSetting(env, variable)
    if (value === undefined) continue
    // Checked here, not per request: a stray line break (common in mounted secrets) would
    // otherwise fail every upstream request. The value may be a secret, so it is not echoed.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) throw new ConfigError(variable, `holds a control character (a line break?), so it cannot be sent as the ${header} header`)
    upstream.headers[header] = value
  }
}

/** Only addresses known to be loopback: a name such as `127.example.com` may resolve anywhere. */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'))
}

/** Managed mode: the gateway sends its own key(s) upstream, and clients present gateway keys. */
export function isManaged ({ upstream, upstreams }: GatewayConfig): boolean {
  return upstream.apiKey !== '' || upstreams.some((spec) => spec.apiKey !== '')
}

function checkManagedMode (config: GatewayConfig): void {
  const { auth, server } = config
  // Pass-through mode checks no gateway key: each client's would go upstream as its authorization.
  if (!isManaged(config) && auth.gatewayApiKeys.length > 0) throw new ConfigError('GATEWAY_API_KEYS', 'gateway keys are set but no upstream key (OPENAI_API_KEY or an upstream\'s api_key) is: in pass-through mode the gateway would check no client key and send each upstream as the client\'s authorization. Set the upstream key (managed mode), or unset GATEWAY_API_KEYS')
  if (!isManaged(config) || auth.gatewayApiKeys.length > 0 || auth.allowUnauthenticated) return
  if (isLoopbackHost(server.host)) return
  throw new ConfigError('GATEWAY_API_KEYS', `${config.upstream.apiKey !== '' ? 'OPENAI_API_KEY is set' : 'an upstream has an api_key'} (managed mode) and HOST ${server.host} is not loopback: anyone who reaches the gateway would spend the key. Set GATEWAY_API_KEYS, or ALLOW_UNAUTHENTICATED=true to mean it, or unset the key for pass-through mode (clients send their own keys)`)
}

function readYamlFile (file: string): Map<string, unknown> {
  let source: string
  try {
    source = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let document: unknown
  try {
    // The YAML parser is loaded only when there is a file to read (~8 MB, ~40 ms otherwise).
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml')
    document = parse(source)
  } catch (err) {
    throw new ConfigError('--config', `${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  const flat = new Map<string, unknown>()
  if (document === null || document === undefined) return flat
  if (typeof document !== 'object' || Array.isArray(document)) throw new ConfigError('--config', `${file} must hold a mapping of settings`)
  flatten(document as Record<string, unknown>, '', flat)
  for (const [path, value] of flat) {
    // A typo in a key would otherwise be ignored silently and the default used; so would a key
    // left empty (`redis_url:`), which is as unknown as one with a value.
    if (!KNOWN_PATHS.has(path) && !(value === null && KNOWN_SECTIONS.has(path))) refuseUnknown(path, value, file)
    // A known key left empty (`port:`) keeps its default, as an empty environment variable does.
    if (value === null) flat.delete(path)
  }
  return flat
}

/**
 * A section given a value or a list (`server: 8080`) is not unknown: it is the wrong shape. Its
 * value is not echoed: `redis: redis://:password@host` would print the password.
 */
function refuseUnknown (path: string, value: unknown, file: string): never {
  if (!KNOWN_SECTIONS.has(path)) throw new ConfigError(path, `unknown setting in ${file}`)
  const first = NAMED.find((spec) => spec.section === path)!.path
  throw new ConfigError(path, `is a section in ${file}: expected its settings under it (${first}: …), got ${Array.isArray(value) ? 'a list' : 'a single value'}`)
}

function flatten (node: Record<string, unknown>, prefix: string, into: Map<string, unknown>): void {
  for (const [key, value] of Object.entries(node)) {
    const path = prefix + key
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && !KNOWN_PATHS.has(path)) {
      // An empty mapping (`serverr: {}`) names its key all the same: kept as an empty value.
      if (Object.keys(value).length === 0) into.set(path, null)
      else flatten(value as Record<string, unknown>, path + '.', into)
    } else {
      into.set(path, value)
    }
  }
}
