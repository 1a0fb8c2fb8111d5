import { CounterFamily, HistogramFamily, MetricRegistry, ReadFamily, type CounterCell, type HistogramCell } from './metric-families.js'
import { registerProcessMetrics } from './process-metrics.js'
import type { FailureKind } from '../relay/upstream-failure.js'
import type { EndedBy } from '../relay/response-relay.js'
import type { CallRecord } from '../session/call-record.js'
import type { TokenUsage } from '../session/session-usage.js'
import type { RebindReason } from '../upstream/upstream-set.js'

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
  /** To the answering upstream's headers, from the request, or from its attempt after a failover; -1 when none answered. */
  ttfbMs: number
  durationMs: number
  endedBy: EndedBy
  failureKind?: FailureKind | undefined
}

interface TransportCells {
  active: CounterCell
  duration: HistogramCell
  clientAborts: CounterCell
}

/** The cells for `key`, made once by `make`; the map stays bounded by the label sets' own bounds. */
function cachedCells<C> (cells: Map<string, C>, key: string, make: () => C): C {
  let found = cells.get(key)
  if (found === undefined) {
    found = make()
    cells.set(key, found)
  }
  return found
}

const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx']

/** `2xx`… for a status, `none` for 0 (no answer): one of six strings, none made per request. */
function statusClass (status: number): string {
  return STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`
}

/** Model names kept as label values; later ones are counted as `other`, so the series stay bounded. */
export const MAX_MODEL_LABELS = 20

interface TokenCells { input: CounterCell, cached: CounterCell, output: CounterCell, reasoning: CounterCell }

function tokenCells (cell: (type: string) => CounterCell): TokenCells {
  return { input: cell('input'), cached: cell('cached'), output: cell('output'), reasoning: cell('reasoning') }
}

function addTokens (cells: TokenCells, input: number, cached: number, output: number, reasoning: number): void {
  cells.input.value += input
  cells.cached.value += cached
  cells.output.value += output
  cells.reasoning.value += reasoning
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/**
 * The Prometheus families dashboards rely on, named exactly. No session id is ever a label.
 * The per-request families are plain cells (metric-families.ts): recording an exchange costs
 * a map lookup and a few adds; they and the process's own figures are rendered when scraped.
 */
export class GatewayMetrics {
  readonly registry = new MetricRegistry()
  readonly #requests: CounterFamily
  readonly #ttfb: HistogramFamily
  readonly #upstreamErrors: CounterFamily
  readonly #tokens: CounterFamily
  readonly #rebinds: CounterFamily
  readonly #cacheRequests: CounterFamily
  readonly #cacheMisses: CounterFamily
  readonly #modelTokens: CounterFamily
  readonly #models = new Set<string>()
  /** Token cells by label value: four cells found with one lookup. */
  readonly #tokenCells = new Map<string, TokenCells>()
  readonly #modelCells = new Map<string, TokenCells>()
  readonly #byTransport: Record<Transport, TransportCells>
  readonly #stopProcessMetrics: () => void

  constructor (sessionCount: () => number, upstreams: UpstreamGauge = { names: ['default'], isHealthy: () => true }) {
    const registry = this.registry
    this.#requests = new CounterFamily('session_gateway_requests_total', 'Proxied requests, by route, method, status class, transport and upstream.', ['route', 'method', 'status_class', 'transport', 'upstream'], registry)
    const active = new CounterFamily('session_gateway_active_streams', 'Proxied exchanges in flight (SSE streams, plain requests, WebSockets).', ['transport'], registry, 'gauge')
    this.#ttfb = new HistogramFamily('session_gateway_upstream_ttfb_seconds', 'Time from the request to the upstream response headers; after a failover, from the attempt on the upstream that answered.', ['transport', 'upstream'], LATENCY_BUCKETS, registry)
    const duration = new HistogramFamily('session_gateway_request_duration_seconds', 'Time from the request to the end of the response.', ['transport'], LATENCY_BUCKETS, registry)
    this.#upstreamErrors = new CounterFamily('session_gateway_upstream_errors_total', 'Upstream failures, by kind (connect, timeout, reset, protocol, status: a 5xx, or a 429 that was retried elsewhere, or in managed mode a 401 or 403 retried elsewhere) and upstream; failed attempts retried elsewhere count too.', ['kind', 'upstream'], registry)
    const clientAborts = new CounterFamily('session_gateway_client_aborts_total', 'Exchanges the client left before their end.', ['transport'], registry)
    this.#tokens = new CounterFamily('session_gateway_tokens_total', 'Tokens reported by the upstream in usage, by type (input, cached, output, reasoning) and upstream.', ['type', 'upstream'], registry)
    this.#rebinds = new CounterFamily('session_gateway_session_rebinds_total', 'Sessions moved to another upstream, by reason: failover (their upstream failed a request), unhealthy (it was ejected), removed (it left the config), lineage (a response they produced in another group, before a failover, was continued there).', ['reason'], registry)
    new ReadFamily('session_gateway_upstream_healthy', '1 while the upstream takes traffic, 0 while it is ejected.', // eslint-disable-line no-new
      () => upstreams.names.map((name) => [{ upstream: name }, upstreams.isHealthy(name) ? 1 : 0]), registry)
    this.#cacheRequests = new CounterFamily('session_gateway_cache_requests_total', 'Model calls by prompt cache outcome: hit (cached >= half the input), partial, miss, n/a (prompt too short, or no usage).', ['outcome'], registry)
    this.#cacheMisses = new CounterFamily('session_gateway_cache_misses_total', 'Cache misses by reason: first_request, rebound, prefix_changed, input_changed, idle, unexplained.', ['reason'], registry)
    this.#modelTokens = new CounterFamily('session_gateway_model_tokens_total', `Tokens of model calls by model (the first ${MAX_MODEL_LABELS} seen; the rest as other) and type.`, ['model', 'type'], registry)
    // Exported from the start, so a dashboard sees 0 rather than no series before any traffic.
    for (const outcome of ['hit', 'partial', 'miss', 'n/a']) this.#cacheRequests.cell(outcome)
    for (const reason of ['first_request', 'rebound', 'prefix_changed', 'input_changed', 'idle', 'unexplained']) this.#cacheMisses.cell(reason)
    new ReadFamily('session_gateway_sessions', 'Session bindings held by this process\'s store.', () => [[{}, sessionCount()]], registry) // eslint-disable-line no-new
    for (const upstream of upstreams.names) {
      for (const kind of ['connect', 'timeout', 'reset', 'protocol', 'status']) this.#upstreamErrors.cell(kind, upstream)
      for (const type of ['input', 'cached', 'output', 'reasoning']) this.#tokens.cell(type, upstream)
    }
    for (const reason of ['failover', 'unhealthy', 'removed', 'lineage']) this.#rebinds.cell(reason)
    clientAborts.cell('http')
    const cellsFor = (transport: Transport): TransportCells => ({
      active: active.cell(transport),
      duration: duration.cell(transport),
      clientAborts: clientAborts.cell(transport)
    })
    this.#byTransport = { http: cellsFor('http'), websocket: cellsFor('websocket') }
    this.#stopProcessMetrics = registerProcessMetrics(registry, 'session_gateway_')
  }

  /** Stops the event-loop delay monitor (a timer every 10 ms): a closed gateway samples nothing. */
  close (): void {
    this.#stopProcessMetrics()
  }

  exchangeStarted (transport: Transport): void {
    this.#byTransport[transport].active.value++
  }

  /** Counts a finished exchange; `started` is false for requests refused before going upstream. */
  exchangeEnded (e: ExchangeMetrics, started = true): void {
    const cells = this.#byTransport[e.transport]
    if (started) cells.active.value--
    this.#requests.cell(e.route, e.method, statusClass(e.status), e.transport, e.upstream).value++
    if (!started) return
    if (e.ttfbMs >= 0) this.#ttfb.cell(e.transport, e.upstream).observe(e.ttfbMs / 1000)
    cells.duration.observe(e.durationMs / 1000)
    if (e.endedBy === 'client') cells.clientAborts.value++
    if (e.failureKind !== undefined) this.upstreamFailed(e.upstream, e.failureKind)
    else if (e.status >= 500 && e.endedBy !== 'client') this.upstreamFailed(e.upstream, 'status')
  }

  /** A failed upstream attempt: the exchange's last one (from `exchangeEnded`), or one retried elsewhere. */
  upstreamFailed (upstream: string, kind: FailureKind | 'status'): void {
    this.#upstreamErrors.cell(kind, upstream).value++
  }

  sessionRebound (reason: RebindReason): void {
    this.#rebinds.cell(reason).value++
  }

  tokensUsed (usage: TokenUsage, upstream: string): void {
    const cells = cachedCells(this.#tokenCells, upstream, () => tokenCells((type) => this.#tokens.cell(type, upstream)))
    addTokens(cells, usage.input, usage.cached, usage.output, usage.reasoning)
  }

  /** A model call's record: its cache outcome, miss reason and tokens by model. */
  callRecorded (record: CallRecord): void {
    this.#cacheRequests.cell(record.cache).value++
    if (record.missReason !== null) this.#cacheMisses.cell(record.missReason).value++
    // Only a call the upstream answered names a model: a refused one's name is whatever the
    // client sent (a typo, junk), and would take one of the label slots until restart.
    if (!answered(record.status)) return
    const model = this.#modelLabel(record.model)
    const cells = cachedCells(this.#modelCells, model, () => tokenCells((type) => this.#modelTokens.cell(model, type)))
    addTokens(cells, record.input, record.cached, record.output, record.reasoning)
  }

  #modelLabel (model: string | null): string {
    if (model === null) return 'unknown'
    if (this.#models.has(model)) return model
    if (this.#models.size >= MAX_MODEL_LABELS) return 'other'
    this.#models.add(model)
    return model
  }

  async render (): Promise<{ contentType: string, body: string }> {
    return { contentType: MetricRegistry.CONTENT_TYPE, body: this.registry.render() }
  }
}

/** A 2xx answer, or a WebSocket's response (its calls are recorded with the handshake's 101). */
function answered (status: number): boolean {
  return status === 101 || (status >= 200 && status < 300)
}
