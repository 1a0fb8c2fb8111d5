/**
 * Tracing is configured the way every OpenTelemetry SDK is, by the standard `OTEL_*`
 * environment variables, not by gateway settings: operators already set them for the rest of
 * their fleet. They are read here, in the config layer, once, like every other setting.
 * Tracing is off unless an OTLP endpoint is set.
 */
import { OTLP_TLS_ENV_NAMES, otlpTlsFromEnv, type OtlpTls } from './otlp-tls.js'
import { ConfigError } from './settings.js'

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const
export type OtlpProtocol = typeof OTLP_PROTOCOLS[number]

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const
export type SamplerName = typeof SAMPLERS[number]

export const OTLP_COMPRESSIONS = ['none', 'gzip'] as const
export type OtlpCompression = typeof OTLP_COMPRESSIONS[number]

export interface TracingConfig {
  enabled: boolean
  /** Where spans are POSTed: the traces endpoint as given, or the base endpoint + `/v1/traces`. */
  endpoint: string
  protocol: OtlpProtocol
  /** Sent to the collector with every export. Secret: never logged, never in a span. */
  headers: Record<string, string>
  serviceName: string
  resourceAttributes: Record<string, string>
  sampler: SamplerName
  /** The ratio of the `*traceidratio` samplers, 0 to 1. */
  samplerRatio: number
  /** The batch span processor's settings (OTEL_BSP_*), in its own units. */
  batch: { scheduledDelayMillis: number, exportTimeoutMillis: number, maxQueueSize: number, maxExportBatchSize: number }
  /** How long one export request may take (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT / OTEL_EXPORTER_OTLP_TIMEOUT). */
  exporterTimeoutMillis: number
  /** How export bodies are sent (OTEL_EXPORTER_OTLP_TRACES_COMPRESSION / OTEL_EXPORTER_OTLP_COMPRESSION). */
  compression: OtlpCompression
  /** The collector's CA and a client certificate, read at start (otlp-tls.ts); empty over http://. */
  tls: OtlpTls
}

/** Tracing off: what the other variables say is not read, so a value meant for another SDK (grpc, xray) stops nothing. */
const TRACING_OFF: TracingConfig = Object.freeze({
  enabled: false,
  endpoint: '',
  protocol: 'http/protobuf',
  headers: {},
  serviceName: 'session-gateway',
  resourceAttributes: {},
  sampler: 'parentbased_always_on',
  samplerRatio: 1,
  batch: { scheduledDelayMillis: 5000, exportTimeoutMillis: 30_000, maxQueueSize: 2048, maxExportBatchSize: 512 },
  exporterTimeoutMillis: 10_000,
  compression: 'none',
  tls: {}
})

type Env = Record<string, string | undefined>

/**
 * Every variable read here, for the docs and deployment-file checks: the only `OTEL_*` variables
 * the gateway honours. The OpenTelemetry packages are handed these values and read none themselves.
 */
export const TRACING_ENV_NAMES = [
  'OTEL_SDK_DISABLED', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_EXPORTER_OTLP_COMPRESSION', 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', ...OTLP_TLS_ENV_NAMES
] as const

/**
 * The tracing settings from `OTEL_*` variables; off without an endpoint or with
 * OTEL_SDK_DISABLED=true, and then nothing else is read or checked (a disabled SDK is a no-op).
 */
export function tracingFromEnv (env: Env): TracingConfig {
  const value = (name: string): string | undefined => {
    const raw = env[name]?.trim()
    return raw === undefined || raw === '' ? undefined : raw
  }
  const disabled = value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true'
  const endpoint = disabled ? undefined : tracesEndpoint(value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'), value('OTEL_EXPORTER_OTLP_ENDPOINT'))
  if (endpoint === undefined) return TRACING_OFF
  // The spec's precedence: a set `_TRACES_` variable wins, and its generic one is then not read.
  const choose = (suffix: string): [name: string, value: string] | undefined => {
    const traces = `OTEL_EXPORTER_OTLP_TRACES_${suffix}`
    const generic = `OTEL_EXPORTER_OTLP_${suffix}`
    const chosen = value(traces) !== undefined ? traces : generic
    const raw = value(chosen)
    return raw === undefined ? undefined : [chosen, raw]
  }
  const [timeoutName, timeout] = choose('TIMEOUT') ?? ['', undefined]
  const [protocolName, protocol] = choose('PROTOCOL') ?? ['', undefined]
  const [headersName, headers] = choose('HEADERS') ?? ['', undefined]
  const [compressionName, compression] = choose('COMPRESSION') ?? ['', undefined]
  const sampler = oneOfChoices(value('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on', SAMPLERS, 'OTEL_TRACES_SAMPLER')
  const resourceAttributes = keyValueList(value('OTEL_RESOURCE_ATTRIBUTES'), 'OTEL_RESOURCE_ATTRIBUTES', { secret: false })
  // The spec's order: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES' service.name, else a default (ours).
  const attributesServiceName = resourceAttributes['service.name']?.trim() === '' ? undefined : resourceAttributes['service.name']
  return {
    enabled: true,
    endpoint,
    protocol: oneOfChoices(protocol ?? 'http/protobuf', OTLP_PROTOCOLS, protocolName),
    headers: collectorHeaders(headers, headersName),
    serviceName: value('OTEL_SERVICE_NAME') ?? attributesServiceName ?? 'session-gateway',
    resourceAttributes,
    sampler,
    samplerRatio: sampler.endsWith('traceidratio') ? ratio(value('OTEL_TRACES_SAMPLER_ARG')) : 1,
    batch: batchSettings(value),
    exporterTimeoutMillis: whole(timeout, 10_000, timeoutName),
    compression: oneOfChoices(compression ?? 'none', OTLP_COMPRESSIONS, compressionName),
    tls: otlpTlsFromEnv(endpoint, choose)
  }
}

/**
 * The batch span processor's settings. A batch is taken from the queue, so it can be no larger
 * (the spec's "must be less than or equal"): the SDK would cut it to the queue's size without a
 * word, so a batch size set above the queue's is refused, and the default is cut to a smaller queue.
 */
function batchSettings (value: (name: string) => string | undefined): TracingConfig['batch'] {
  const maxQueueSize = whole(value('OTEL_BSP_MAX_QUEUE_SIZE'), 2048, 'OTEL_BSP_MAX_QUEUE_SIZE')
  const batchSize = value('OTEL_BSP_MAX_EXPORT_BATCH_SIZE')
  const maxExportBatchSize = whole(batchSize, Math.min(512, maxQueueSize), 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE')
  if (maxExportBatchSize > maxQueueSize) {
    const queue = `OTEL_BSP_MAX_QUEUE_SIZE ${maxQueueSize}${value('OTEL_BSP_MAX_QUEUE_SIZE') === undefined ? ' (its default)' : ''}`
    throw new ConfigError('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', `${maxExportBatchSize} is above ${queue}: a batch is taken from the queue; lower it, or raise OTEL_BSP_MAX_QUEUE_SIZE`)
  }
  return {
    scheduledDelayMillis: whole(value('OTEL_BSP_SCHEDULE_DELAY'), 5000, 'OTEL_BSP_SCHEDULE_DELAY'),
    exportTimeoutMillis: whole(value('OTEL_BSP_EXPORT_TIMEOUT'), 30_000, 'OTEL_BSP_EXPORT_TIMEOUT'),
    maxQueueSize,
    maxExportBatchSize
  }
}

/** The spec's rule: a signal-specific endpoint is used as is; the base one gets `/v1/traces` appended. */
function tracesEndpoint (traces: string | undefined, base: string | undefined): string | undefined {
  const [name, raw] = traces !== undefined ? ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', traces] : ['OTEL_EXPORTER_OTLP_ENDPOINT', base]
  if (raw === undefined) return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(name, `not a URL: ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(name, `expected an http:// or https:// URL, got ${url.protocol}`)
  if (traces !== undefined) return url.href
  url.pathname = url.pathname.replace(/\/$/, '') + '/v1/traces'
  return url.href
}

function oneOfChoices<const T extends string> (raw: string, choices: readonly T[], name: string): T {
  const lower = raw.toLowerCase()
  if ((choices as readonly string[]).includes(lower)) return lower as T
  throw new ConfigError(name, `expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`)
}

/**
 * `key1=value1,key2=value2`, keys and values percent-encoded (W3C Baggage style: the spec has
 * `,` and `=` in either encoded, anything else may be). What does not decode stops the start,
 * as the spec's "discard the whole value and report it" does for an SDK.
 */
export function keyValueList (raw: string | undefined, name: string, { secret }: { secret: boolean }): Record<string, string> {
  const out: Record<string, string> = {}
  if (raw === undefined) return out
  for (const item of raw.split(',')) {
    if (item.trim() === '') continue
    const at = item.indexOf('=')
    const rawKey = at === -1 ? '' : item.slice(0, at).trim()
    // A secret list's values are never echoed, not even a malformed one; its keys are header names.
    if (rawKey === '') throw new ConfigError(name, secret ? 'expected key=value pairs separated by commas' : `expected key=value, got ${JSON.stringify(item)}`)
    const key = percentDecoded(rawKey, name, `the key ${JSON.stringify(rawKey)}`)
    if (key.trim() === '') throw new ConfigError(name, `the key ${JSON.stringify(rawKey)} is blank once decoded`)
    const decoded = percentDecoded(item.slice(at + 1).trim(), name, `the value of ${key}`)
    out[secret ? key.toLowerCase() : key] = decoded
  }
  return out
}

function percentDecoded (raw: string, name: string, what: string): string {
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    throw new ConfigError(name, `${what} is not valid percent-encoding`)
  }
  if (!/^[\t\x20-\x7e\x80-\uffff]*$/.test(decoded)) throw new ConfigError(name, `${what} holds a control character`)
  return decoded
}

/**
 * The collector's headers: a key=value list whose keys must be header names and whose values
 * must be sendable, checked at start, since the exporter would otherwise fail every export
 * (quietly, on its own timer). Values are secrets: never echoed.
 */
function collectorHeaders (raw: string | undefined, name: string): Record<string, string> {
  const headers = keyValueList(raw, name, { secret: true })
  for (const [key, headerValue] of Object.entries(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new ConfigError(name, `${JSON.stringify(key)} is not a header name`)
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(headerValue)) throw new ConfigError(name, `the value of ${key} holds a character a header cannot carry`)
  }
  return headers
}

function ratio (raw: string | undefined): number {
  if (raw === undefined) return 1
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new ConfigError('OTEL_TRACES_SAMPLER_ARG', `expected a ratio from 0 to 1, got ${JSON.stringify(raw)}`)
  return value
}

function whole (raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) throw new ConfigError(name, `expected a positive whole number, got ${JSON.stringify(raw)}`)
  return Number(raw)
}
