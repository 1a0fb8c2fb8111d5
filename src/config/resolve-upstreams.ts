import type { GatewayConfig } from './load-config.js'
import { ConfigError } from './settings.js'
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_PROBE_TIMEOUT_MS, type UpstreamSpec } from './upstream-list.js'

/** Which keys set `upstream.url` and `upstreams` (an env var or a YAML path), if any did. */
export interface UpstreamSources {
  url: string | undefined
  upstreams: string | undefined
  defaultUrl: URL
}

/** The name of the one upstream that `UPSTREAM_URL` describes. */
export const DEFAULT_UPSTREAM = 'default'

/**
 * The upstreams the gateway routes over: the `upstreams` list, or else one upstream named
 * `default` at `upstream.url`. Keys named by `api_key_env` are read here, so a missing one
 * stops the start instead of sending the client's key upstream.
 */
export function resolveUpstreams (config: GatewayConfig, env: Record<string, string | undefined>, sources: UpstreamSources): UpstreamSpec[] {
  const listed = config.upstreams
  if (listed.length === 0) return [defaultUpstream(config.upstream.url)]
  // upstream.url written as its default (config.example.yaml does) names nothing of its own.
  if (sources.url !== undefined && config.upstream.url.href !== sources.defaultUrl.href) {
    throw new ConfigError(sources.url, `set ${sources.url} or ${sources.upstreams ?? 'upstreams'}, not both: ${sources.url} means one upstream named "${DEFAULT_UPSTREAM}"`)
  }
  const key = sources.upstreams ?? 'upstreams'
  return listed.map((spec, i) => {
    if (spec.apiKeyEnv === '') return spec
    const value = env[spec.apiKeyEnv]
    if (value === undefined || value === '') throw new ConfigError(`${key}[${i}].api_key_env`, `names ${spec.apiKeyEnv}, which is not set`)
    // The value is a secret: it is never echoed.
    if (!/^[\x21-\x7e]+$/.test(value.trim())) throw new ConfigError(spec.apiKeyEnv, 'must be printable ASCII without spaces')
    return { ...spec, apiKey: value.trim() }
  })
}

function defaultUpstream (url: URL): UpstreamSpec {
  return { name: DEFAULT_UPSTREAM, url, weight: 1, apiKey: '', apiKeyEnv: '', headers: {}, group: DEFAULT_UPSTREAM, probePath: '', probeIntervalMs: DEFAULT_PROBE_INTERVAL_MS, probeTimeoutMs: DEFAULT_PROBE_TIMEOUT_MS, unusedProbeFields: [], placementFields: [] }
}
