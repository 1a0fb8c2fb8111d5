import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { FailureKind } from '../relay/upstream-failure.js'
import type { EndedBy } from '../relay/response-relay.js'
import type { CallRecord } from '../session/call-record.js'
import type { TokenUsage } from '../session/session-usage.js'

export type Transport = 'http' | 'websocket'

/** What the metrics know of the configured upstreams: their names (bounded label values) and health. */
export interface UpstreamGauge {
  names: readonly string[]
  isHealthy: (name: string) => boolean
}

/** The `upstream` label of a request refused before any upstream was chosen. */
export const NO_UPSTREAM = 'none'

export interface ExchangeMetrics {
  route: string
  method: string
  status: number
  transport: Transport
  /** The upstream that answered (the last one tried), or NO_UPSTREAM. */
  upstream: string
  /** -1 when the upstream never answered. */
  ttfbMs: number
  durationMs: number
  endedBy: EndedBy
  failureKind?: FailureKind | undefined
}

interface TransportChildren {
  active: { inc: () => void, dec: () => void }
  duration: { observe: (value: number) => void }
  clientAborts: { inc: () => void }
}

/** Model names kept as label values; later ones are counted as `other`, so the series stay bounded. */
export const MAX_MODEL_LABELS = 20
const TOKEN_TYPES = ['input', 'cached', 'output', 'reasoning'] as const
type TokenType = typeof TOKEN_TYPES[number]
type TokenChildren = Record<TokenType, { inc: (value: number) => void }>

/** The child for `key`, made once by `make`; the map stays bounded by the label sets' own bounds. */
function cachedChild<C> (children: Map<string, C>, key: string, make: () => C): C {
  let child = children.get(key)
  if (child === undefined) {
    child = make()
    children.set(key, child)
  }
  return child
}

function tokenChildren (labels: (type: TokenType) => { inc: (value: number) => void }): TokenChildren {
  return { input: labels('input'), cached: labels('cached'), output: labels('output'), reasoning: labels('reasoning') }
}

function addTokens (children: TokenChildren, input: number, cached: number, output: number, reasoning: number): void {
  children.input.inc(input)
  children.cached.inc(cached)
  children.output.inc(output)
  children.reasoning.inc(reasoning)
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/**
 * The Prometheus families dashboards rely on, named exactly. No session id is ever a label.
 * Label children are cached so recording an exchange costs a map lookup and a few adds.
 */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'route' | 'method' | 'status_class' | 'transport' | 'upstream'>
  readonly #active: Gauge<'transport'>
  readonly #ttfb: Histogram<'transport' | 'upstream'>
  readonly #duration: Histogram<'transport'>
  readonly #upstreamErrors: Counter<'kind' | 'upstream'>
  readonly #clientAborts: Counter<'transport'>
  readonly #tokens: Counter<'type' | 'upstream'>
  readonly #rebinds: Counter<'reason'>
  readonly #cacheRequests: Counter<'outcome'>
  readonly #cacheMisses: Counter<'reason'>
  readonly #modelTokens: Counter<'model' | 'type'>
  readonly #models = new Set<string>()
  /** Bound children, by label values: prom-client hashes a labels object on every call otherwise. */
  readonly #tokenChildren = new Map<string, TokenChildren>()
  readonly #modelChildren = new Map<string, TokenChildren>()
  readonly #outcomeChildren = new Map<string, { inc: () => void }>()
  readonly #reasonChildren = new Map<string, { inc: () => void }>()
  readonly #requestChildren = new Map<string, { inc: () => void }>()
  readonly #ttfbChildren = new Map<string, { observe: (value: number) => void }>()
  readonly #byTransport: Record<Transport, TransportChildren>

  constructor (sessionCount: () => number, upstreams: UpstreamGauge = { names: ['default'], isHealthy: () => true }) {
    const registers = [this.registry]
    this.#requests = new Counter({ name: 'session_gateway_requests_total', help: 'Proxied requests, by route, method, status class, transport and upstream.', labelNames: ['route', 'method', 'status_class', 'transport', 'upstream'], registers })
    this.#active = new Gauge({ name: 'session_gateway_active_streams', help: 'Proxied exchanges in flight (SSE streams, plain requests, WebSockets).', labelNames: ['transport'], registers })
    this.#ttfb = new Histogram({ name: 'session_gateway_upstream_ttfb_seconds', help: 'Time from the request to the upstream response headers.', labelNames: ['transport', 'upstream'], buckets: LATENCY_BUCKETS, registers })
    this.#duration = new Histogram({ name: 'session_gateway_request_duration_seconds', help: 'Time from the request to the end of the response.', labelNames: ['transport'], buckets: LATENCY_BUCKETS, registers })
    this.#upstreamErrors = new Counter({ name: 'session_gateway_upstream_errors_total', help: 'Upstream failures, by kind (connect, timeout, reset, protocol, status: a 5xx, or a 429 that was retried elsewhere) and upstream; failed attempts retried elsewhere count too.', labelNames: ['kind', 'upstream'], registers })
    this.#clientAborts = new Counter({ name: 'session_gateway_client_aborts_total', help: 'Exchanges the client left before their end.', labelNames: ['transport'], registers })
    this.#tokens = new Counter({ name: 'session_gateway_tokens_total', help: 'Tokens reported by the upstream in usage, by type (input, cached, output, reasoning) and upstream.', labelNames: ['type', 'upstream'], registers })
    this.#rebinds = new Counter({ name: 'session_gateway_session_rebinds_total', help: 'Sessions moved to another upstream, by reason: failover (their upstream failed a request), unhealthy (it was ejected), removed (it left the config).', labelNames: ['reason'], registers })
    new Gauge({ // eslint-disable-line no-new
      name: 'session_gateway_upstream_healthy',
      help: '1 while the upstream takes traffic, 0 while it is ejected.',
      labelNames: ['upstream'],
      registers,
      collect () { for (const name of upstreams.names) this.set({ upstream: name }, upstreams.isHealthy(name) ? 1 : 0) }
    })
    this.#cacheRequests = new Counter({ name: 'session_gateway_cache_requests_total', help: 'Model calls by prompt cache outcome: hit (cached >= half the input), partial, miss, n/a (prompt too short, or no usage).', labelNames: ['outcome'], registers })
    this.#cacheMisses = new Counter({ name: 'session_gateway_cache_misses_total', help: 'Cache misses by reason: first_request, rebound, prefix_changed, idle, unexplained.', labelNames: ['reason'], registers })
    this.#modelTokens = new Counter({ name: 'session_gateway_model_tokens_total', help: `Tokens of model calls by model (the first ${MAX_MODEL_LABELS} seen; the rest as other) and type.`, labelNames: ['model', 'type'], registers })
    for (const outcome of ['hit', 'partial', 'miss', 'n/a']) this.#cacheRequests.inc({ outcome }, 0)
    for (const reason of ['first_request', 'rebound', 'prefix_changed', 'idle', 'unexplained']) this.#cacheMisses.inc({ reason }, 0)
    new Gauge({ // eslint-disable-line no-new
      name: 'session_gateway_sessions',
      help: 'Session bindings held by this process\'s store.',
      registers,
      collect () { this.set(sessionCount()) }
    })
    for (const upstream of upstreams.names) {
      for (const kind of ['connect', 'timeout', 'reset', 'protocol', 'status']) this.#upstreamErrors.inc({ kind, upstream }, 0)
      for (const type of ['input', 'cached', 'output', 'reasoning']) this.#tokens.inc({ type, upstream }, 0)
    }
    for (const reason of ['failover', 'unhealthy', 'removed']) this.#rebinds.inc({ reason }, 0)
    this.#clientAborts.inc({ transport: 'http' }, 0)
    // Bound once: prom-client hashes a labels object on every call otherwise.
    const childrenFor = (transport: Transport): TransportChildren => ({
      active: this.#active.labels(transport),
      duration: this.#duration.labels(transport),
      clientAborts: this.#clientAborts.labels(transport)
    })
    this.#byTransport = { http: childrenFor('http'), websocket: childrenFor('websocket') }
    // Exported from the start, so a dashboard sees 0 rather than no series before any traffic.
    for (const transport of ['http', 'websocket'] as const) this.#active.set({ transport }, 0)
    collectDefaultMetrics({ register: this.registry, prefix: 'session_gateway_' })
  }

  exchangeStarted (transport: Transport): void {
    this.#byTransport[transport].active.inc()
  }

  /** Counts a finished exchange; `started` is false for requests refused before going upstream. */
  exchangeEnded (e: ExchangeMetrics, started = true): void {
    const children = this.#byTransport[e.transport]
    if (started) children.active.dec()
    const statusClass = e.status === 0 ? 'none' : `${Math.floor(e.status / 100)}xx`
    const key = `${e.route} ${e.method} ${statusClass} ${e.transport} ${e.upstream}`
    let child = this.#requestChildren.get(key)
    if (child === undefined) {
      child = this.#requests.labels(e.route, e.method, statusClass, e.transport, e.upstream)
      this.#requestChildren.set(key, child)
    }
    child.inc()
    if (!started) return
    if (e.ttfbMs >= 0) this.#ttfbChild(e.transport, e.upstream).observe(e.ttfbMs / 1000)
    children.duration.observe(e.durationMs / 1000)
    if (e.endedBy === 'client') children.clientAborts.inc()
    if (e.failureKind !== undefined) this.upstreamFailed(e.upstream, e.failureKind)
    else if (e.status >= 500 && e.endedBy !== 'client') this.upstreamFailed(e.upstream, 'status')
  }

  /** A failed upstream attempt: the exchange's last one (from `exchangeEnded`), or one retried elsewhere. */
  upstreamFailed (upstream: string, kind: FailureKind | 'status'): void {
    this.#upstreamErrors.inc({ kind, upstream })
  }

  sessionRebound (reason: 'failover' | 'unhealthy' | 'removed'): void {
    this.#rebinds.inc({ reason })
  }

  tokensUsed (usage: TokenUsage, upstream: string): void {
    const children = cachedChild(this.#tokenChildren, upstream, () => tokenChildren((type) => this.#tokens.labels(type, upstream)))
    addTokens(children, usage.input, usage.cached, usage.output, usage.reasoning)
  }

  #ttfbChild (transport: Transport, upstream: string): { observe: (value: number) => void } {
    const key = `${transport} ${upstream}`
    let child = this.#ttfbChildren.get(key)
    if (child === undefined) {
      child = this.#ttfb.labels(transport, upstream)
      this.#ttfbChildren.set(key, child)
    }
    return child
  }

  /** A model call's record: its cache outcome, miss reason and tokens by model. */
  callRecorded (record: CallRecord): void {
    cachedChild(this.#outcomeChildren, record.cache, () => this.#cacheRequests.labels(record.cache)).inc()
    const reason = record.missReason
    if (reason !== null) cachedChild(this.#reasonChildren, reason, () => this.#cacheMisses.labels(reason)).inc()
    const model = this.#modelLabel(record.model)
    const children = cachedChild(this.#modelChildren, model, () => tokenChildren((type) => this.#modelTokens.labels(model, type)))
    addTokens(children, record.input, record.cached, record.output, record.reasoning)
  }

  #modelLabel (model: string | null): string {
    if (model === null) return 'unknown'
    if (this.#models.has(model)) return model
    if (this.#models.size >= MAX_MODEL_LABELS) return 'other'
    this.#models.add(model)
    return model
  }

  async render (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
