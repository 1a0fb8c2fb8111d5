/**
 * The `upstreams:` list (env `UPSTREAMS`, the same list as JSON): several upstreams that new
 * sessions are spread over, each with its own URL, weight, key, headers and group. Parsed and
 * checked here; keys named by `api_key_env` are read in load-config.ts, the one reader of the
 * environment.
 */
import { ConfigError, ConfigWarning, headerMap, httpUrl, integer, jsonFromEnvironment, secret, text, type Parse } from './settings.js'

/** One upstream as configured. */
export interface UpstreamSpec {
  /** `[a-z0-9_-]{1,32}`: in logs, metric labels and admin JSON. */
  name: string
  url: URL
  /** Share of new sessions, relative to the others' weights. */
  weight: number
  /** Managed key for this upstream; '' = none (see `apiKeyEnv`, resolved at load). */
  apiKey: string
  /** Environment variable holding `apiKey`; '' = none. */
  apiKeyEnv: string
  /** Extra request headers; `{session}` in a value is replaced by the session id. */
  headers: Record<string, string>
  /** Upstreams of one group share stored responses: lineage may move within it. */
  group: string
  /** Active health probe: path under `url` asked with GET; '' = passive health only. */
  probePath: string
  /** Wait between the end of one probe and the start of the next. */
  probeIntervalMs: number
  /** How long one probe may take, connect to last byte, before it counts as failed. */
  probeTimeoutMs: number
  /** `probe_interval_ms`, `probe_timeout_ms` when given without `probe_path`: they do nothing (see `upstreamListWarnings`). */
  unusedProbeFields: string[]
  /** `weight`, `group` when given: they place sessions among several upstreams, so do nothing for a lone one. */
  placementFields: string[]
}

export const DEFAULT_PROBE_INTERVAL_MS = 10_000
/**
 * Not tied to the interval: a short interval is for finding a recovered upstream sooner, not for
 * failing a healthy one that a busy host makes answer in a second. 5 s, as Traefik's and an
 * AWS load balancer's health checks wait by default.
 */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000
const PROBE_MS = integer(100, 3_600_000)

const PROBE_TIMING = ['probe_interval_ms', 'probe_timeout_ms'] as const
const PLACEMENT = ['weight', 'group'] as const

const NAME = /^[a-z0-9_-]{1,32}$/
const FIELDS = new Set(['name', 'url', 'weight', 'api_key', 'api_key_env', 'headers', 'group', 'probe_path', 'probe_interval_ms', 'probe_timeout_ms'])

/** A YAML list, or a JSON array in the environment; [] when unset. */
export function upstreamList (): Parse<UpstreamSpec[]> {
  return (raw, key) => {
    const value = jsonFromEnvironment(raw, key, 'expected a JSON array of upstreams ({"name","url",…})')
    if (!Array.isArray(value)) throw new ConfigError(key, 'expected a list of upstreams')
    const specs = value.map((item, i) => parseUpstream(item, `${key}[${i}]`))
    const seen = new Set<string>()
    for (const [i, spec] of specs.entries()) {
      if (seen.has(spec.name)) throw new ConfigError(`${key}[${i}].name`, `${JSON.stringify(spec.name)} is used twice: names must be unique`)
      seen.add(spec.name)
    }
    return specs
  }
}

function parseUpstream (raw: unknown, key: string): UpstreamSpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(key, 'expected a mapping with at least name and url')
  const item = raw as Record<string, unknown>
  for (const field of Object.keys(item)) {
    // A typo (`wieght`) would otherwise be ignored silently.
    if (!FIELDS.has(field)) throw new ConfigError(`${key}.${field}`, `unknown upstream field (known: ${[...FIELDS].join(', ')})`)
  }
  if (item.name === undefined) throw new ConfigError(`${key}.name`, 'is required')
  if (item.url === undefined) throw new ConfigError(`${key}.url`, 'is required')
  const name = identifier(item.name, `${key}.name`)
  const probePath = item.probe_path === undefined ? '' : text()(item.probe_path, `${key}.probe_path`)
  if (probePath !== '' && !probePath.startsWith('/')) throw new ConfigError(`${key}.probe_path`, 'must start with /')
  const apiKey = item.api_key === undefined ? '' : secret()(item.api_key, `${key}.api_key`)
  const apiKeyEnv = item.api_key_env === undefined ? '' : text()(item.api_key_env, `${key}.api_key_env`)
  if (apiKey !== '' && apiKeyEnv !== '') throw new ConfigError(`${key}.api_key_env`, 'set api_key or api_key_env, not both')
  return {
    name,
    url: httpUrl()(item.url, `${key}.url`),
    weight: item.weight === undefined ? 1 : weight(item.weight, `${key}.weight`),
    apiKey,
    apiKeyEnv,
    headers: item.headers === undefined ? {} : headerMap()(item.headers, `${key}.headers`),
    group: item.group === undefined ? name : identifier(item.group, `${key}.group`),
    probePath,
    probeIntervalMs: item.probe_interval_ms === undefined ? DEFAULT_PROBE_INTERVAL_MS : PROBE_MS(item.probe_interval_ms, `${key}.probe_interval_ms`),
    probeTimeoutMs: item.probe_timeout_ms === undefined ? DEFAULT_PROBE_TIMEOUT_MS : PROBE_MS(item.probe_timeout_ms, `${key}.probe_timeout_ms`),
    unusedProbeFields: probePath === '' ? PROBE_TIMING.filter((field) => item[field] !== undefined) : [],
    placementFields: PLACEMENT.filter((field) => item[field] !== undefined)
  }
}

/**
 * Upstream settings of a resolved list (`key`: the key that set it) that do nothing. Warnings,
 * not errors: such configs were accepted before, and a probe_path taken out to stop probing may
 * leave its timing behind. With one upstream nothing is probed, as build-gateway.ts starts
 * probes only for several: one upstream is not judged (requests have nowhere else to go, and
 * /readyz must not take every replica out of service for an upstream they all share). Nor is
 * anything placed: `weight` and `group` choose among several.
 */
export function upstreamListWarnings (specs: readonly UpstreamSpec[], key: string): ConfigWarning[] {
  if (specs.length === 1) return loneUpstreamWarnings(specs[0]!, `${key}[0]`)
  return specs.flatMap((spec, i) => probeTimingWarnings(spec, `${key}[${i}]`))
}

function probeTimingWarnings (spec: UpstreamSpec, key: string): ConfigWarning[] {
  return spec.unusedProbeFields.map((field) => new ConfigWarning(`${key}.${field}`,
    `has no effect without probe_path: ${JSON.stringify(spec.name)} is not probed (passive health only); set probe_path to probe it, or remove ${field}`))
}

function loneUpstreamWarnings (spec: UpstreamSpec, key: string): ConfigWarning[] {
  const probe = (spec.probePath !== '' ? ['probe_path'] : spec.unusedProbeFields).map((field) => new ConfigWarning(`${key}.${field}`,
    `has no effect with a single upstream: it is never probed, since one upstream is not judged (requests always go to it, /readyz does not depend on it, its session_gateway_upstream_healthy stays 1); list a second upstream to route by health, or remove ${field}`))
  const placement = spec.placementFields.map((field) => new ConfigWarning(`${key}.${field}`,
    `has no effect with a single upstream: every session goes to it, and ${field} only chooses among several; list a second upstream, or remove ${field}`))
  return [...probe, ...placement]
}

function identifier (raw: unknown, key: string): string {
  if (typeof raw !== 'string' || !NAME.test(raw)) throw new ConfigError(key, `expected 1 to 32 of a-z, 0-9, _ and -, got ${JSON.stringify(raw)}`)
  return raw
}

function weight (raw: unknown, key: string): number {
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
  if (!Number.isFinite(value) || value <= 0 || value > 1_000_000) throw new ConfigError(key, `expected a number above 0 and at most 1000000, got ${JSON.stringify(raw)}`)
  return value
}

/**
 * A url without a path sends a client's `/v1/responses` to `<origin>/responses`. OpenAI, Azure's
 * v1 API and the self-hosted servers that copy it (vLLM, Ollama, llama.cpp) all serve under a
 * path, so a bare origin is most often a forgotten `/v1`: said at start, not found as a 404 later.
 * A warning, not an error, for the upstream that does serve the API at its root.
 */
export function bareOriginWarnings (specs: readonly UpstreamSpec[], urlKeys: readonly string[]): ConfigWarning[] {
  return specs.flatMap((spec, i) => spec.url.pathname.replace(/\/+$/, '') !== ''
    ? []
    : [new ConfigWarning(urlKeys[i] ?? `upstreams[${i}].url`,
        `has no path, so /v1/responses is sent to ${spec.url.origin}/responses; OpenAI and most compatible servers serve /v1 (${spec.url.origin}/v1): add the path, or ignore this if ${JSON.stringify(spec.name)} serves the API at its root`)])
}
