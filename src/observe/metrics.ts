import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { FailureKind } from '../relay/upstream-failure.js'
import type { EndedBy } from '../relay/response-relay.js'
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
    this.#tokens.inc({ type: 'input', upstream }, usage.input)
    this.#tokens.inc({ type: 'cached', upstream }, usage.cached)
    this.#tokens.inc({ type: 'output', upstream }, usage.output)
    this.#tokens.inc({ type: 'reasoning', upstream }, usage.reasoning)
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

  async render (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
