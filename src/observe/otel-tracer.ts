/**
 * The OpenTelemetry implementation of the gateway's tracing interface: spans decided by the
 * official samplers, recorded as the SDK's would be (recorded-span.ts), batched by its batch
 * processor, and exported over OTLP/HTTP (protobuf, by our encoder, or JSON). With
 * the modules it imports, the only code that imports @opentelemetry/*, loaded by `startTracing`
 * only when tracing is on.
 *
 * Nothing is registered globally (no global provider, context manager or propagator): the
 * parent of every span is passed explicitly, so the gateway's tracing cannot interfere with a
 * host application's and costs no async-context tracking.
 */
import { defaultTextMapGetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, type SpanContext } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources'
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, RandomIdGenerator, TraceIdRatioBasedSampler, type BufferConfig, type IdGenerator, type Sampler, type SpanExporter, type SpanProcessor
} from '@opentelemetry/sdk-trace-base'
import { ATTR_ERROR_TYPE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import type { TracingConfig } from '../config/tracing-env.js'
import type { ExchangeOutcome } from '../proxy/exchange.js'
import type { Session } from '../session/resolve-session.js'
import type { TokenUsage } from '../session/session-usage.js'
import type { Logger } from './logger.js'
import { reportingExporter } from './otel-export-report.js'
import { decideSampling, traceHeadersOf, UnsampledExchange, type SamplingVerdict } from './otel-sampling.js'
import { hrTimeOf, RecordedSpan, type SpanSink } from './recorded-span.js'
import { warmUpExport } from './otel-warm-up.js'
import { recycledEncoding } from './recycled-encoding.js'
import { TERMINAL_EVENTS } from './responses-api.js'
import {
  attemptAttributes, errorType, genAiAttributes, genAiOperation, isError, modelAttributes, outcomeAttributes, requestAttributes, sessionAttributes, spanName, usageAttributes, type SpanAttributes
} from './span-attributes.js'
import type { AttemptSpan, AttemptTarget, ExchangeSpan, ExchangeTracer } from './tracing.js'

const propagator = new W3CTraceContextPropagator()

/** Export requests in flight at most: the exporter packages' default. */
const EXPORT_CONCURRENCY = 30

/**
 * The tracer for `config`. `logger` hears when exports fail and recover; `exporter` replaces
 * the OTLP one (bench/tracing/span-cost.mjs measures the stages apart).
 */
export async function createOtelTracer (config: TracingConfig, { logger, exporter }: { logger?: Logger, exporter?: SpanExporter } = {}): Promise<ExchangeTracer> {
  exporter ??= await createExporter(config)
  if (logger !== undefined) exporter = reportingExporter(exporter, logger, endpointForLog(config.endpoint))
  // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES, as the spec says.
  const resource = resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName })
  // Before the first real span: a cold encoder first run under load stays slower (otel-warm-up.ts).
  warmUpExport(config.protocol, (processor) => exchangeTracer(resource, new AlwaysOnSampler(), processor))
  return exchangeTracer(resource, createSampler(config), new BatchSpanProcessor(exporter, config.batch satisfies BufferConfig))
}

/**
 * Exchanges traced into `processor`. `sampler` decides each exchange before its first span
 * (otel-sampling.ts); a sampled one's spans are all recorded.
 */
function exchangeTracer (resource: Resource, sampler: Sampler, processor: SpanProcessor): ExchangeTracer {
  const ids = new RandomIdGenerator()
  // As the SDK's tracer names its scope: `getTracer('session-gateway')`, no version or schema.
  const sink: SpanSink = { processor, resource, scope: { name: 'session-gateway', version: undefined, schemaUrl: undefined } }
  return {
    startExchange: (req, transport, path) => {
      const method = req.method ?? 'GET'
      const operation = genAiOperation(method, path, transport)
      const name = spanName(operation, undefined, method, path)
      // The client's traceparent (and tracestate), if valid, makes this span its child.
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter)
      const verdict = decideSampling(sampler, ids, parent, name)
      if (!verdict.sampled) return new UnsampledExchange(verdict, ids)
      return new OtelExchangeSpan(sink, ids, verdict, { method, path, operation, name, webSocket: transport === 'websocket' })
    },
    shutdown: async (timeoutMs) => { await withTimeout(processor.shutdown(), timeoutMs) }
  }
}

/** The endpoint as the start-up line names it: no credentials or query. */
function endpointForLog (endpoint: string): string {
  const url = new URL(endpoint)
  return url.origin + url.pathname
}

/**
 * The OTLP/HTTP trace exporter, put together as the exporter packages' `OTLPTraceExporter` is
 * but from its parts, with no environment fallback: that class merges OTEL_EXPORTER_OTLP_HEADERS
 * into any headers it is given and reads the compression and certificate variables itself,
 * unchecked. Every value here was read and checked by the config layer (tracing-env.ts).
 */
async function createExporter ({ endpoint, headers, protocol, exporterTimeoutMillis, compression, tls }: TracingConfig): Promise<SpanExporter> {
  const [{ OTLPExporterBase }, { createOtlpHttpExportDelegate, httpAgentFactoryFromOptions }, transformer] = await Promise.all([
    import('@opentelemetry/otlp-exporter-base'), import('@opentelemetry/otlp-exporter-base/node-http'), import('@opentelemetry/otlp-transformer')
  ])
  const json = protocol === 'http/json'
  const encoding = recycledEncoding()
  const contentType = json ? 'application/json' : 'application/x-protobuf'
  const delegate = createOtlpHttpExportDelegate({
    url: endpoint,
    // A new object per export: the transport adds its User-Agent to the one it is given.
    headers: async () => ({ ...headers, 'Content-Type': contentType }),
    timeoutMillis: exporterTimeoutMillis,
    concurrencyLimit: EXPORT_CONCURRENCY,
    compression,
    // Over http:// the factory leaves the TLS options out.
    agentFactory: httpAgentFactoryFromOptions({ keepAlive: true, ...tls })
  }, json ? transformer.JsonTraceSerializer : encoding.serializer, 'otlp_http_span_exporter', transformer.TraceExporterMetricsHelper, undefined)
  return json ? new OTLPExporterBase(delegate) : encoding.recycling(new OTLPExporterBase(delegate))
}

function createSampler ({ sampler, samplerRatio }: TracingConfig): Sampler {
  switch (sampler) {
    case 'always_on': return new AlwaysOnSampler()
    case 'always_off': return new AlwaysOffSampler()
    case 'traceidratio': return new TraceIdRatioBasedSampler(samplerRatio)
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(samplerRatio) })
    default: return new ParentBasedSampler({ root: new AlwaysOnSampler() })
  }
}

async function withTimeout (work: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs).unref() })
  // A collector that is down must not hold up or fail the shutdown.
  await Promise.race([work.catch(() => {}), timeout])
  clearTimeout(timer)
}

/** What an exchange's server span is started with: its request, as `startExchange` read it. */
interface ExchangeRequest {
  method: string
  path: string
  operation: 'chat' | undefined
  /** The span's first name: `{method} {route}` (otel-sampling.ts's sampler saw it). */
  name: string
  webSocket: boolean
}

/**
 * An exchange's server span. For HTTP, what the response teaches (model, id, usage) goes on it
 * and on the current attempt's client span. A WebSocket's exchange is the connection: each
 * response on it (`response.create` to its terminal event) gets a span of its own, which
 * takes those facts instead.
 */
class OtelExchangeSpan implements ExchangeSpan {
  readonly #sink: SpanSink
  readonly #ids: IdGenerator
  readonly #span: RecordedSpan
  readonly #method: string
  readonly #path: string
  readonly #operation: 'chat' | undefined
  readonly #webSocket: boolean
  #session: Session | undefined
  #model: string | undefined
  #attempt: OtelAttemptSpan | undefined
  #response: RecordedSpan | undefined
  #ended = false

  constructor (sink: SpanSink, ids: IdGenerator, verdict: SamplingVerdict, request: ExchangeRequest) {
    this.#sink = sink
    this.#ids = ids
    this.#method = request.method
    this.#path = request.path
    this.#webSocket = request.webSocket
    this.#operation = request.operation
    this.#span = new RecordedSpan(sink, request.name, SpanKind.SERVER, verdict.parent, verdict.traceId, ids.generateSpanId())
      .setAttributes(requestAttributes(request.method, request.path))
  }

  get traceId (): string {
    return this.#span.spanContext().traceId
  }

  /** A span under this exchange's: an attempt's, or a WebSocket response's. */
  #child (name: string, startTime?: number): RecordedSpan {
    const context: SpanContext = this.#span.spanContext()
    return new RecordedSpan(this.#sink, name, SpanKind.CLIENT, context, context.traceId, this.#ids.generateSpanId(), startTime === undefined ? undefined : hrTimeOf(startTime))
  }

  admitted (session: Session): void {
    this.#session = session
    this.#span.setAttributes(sessionAttributes(session))
  }

  startAttempt (target: AttemptTarget): AttemptSpan {
    this.#attempt = new OtelAttemptSpan(this.#child(spanName(this.#operation, undefined, target.method, target.path)), target, this.#operation, this.#session?.id)
    return this.#attempt
  }

  responseModel (model: string): void {
    if (this.#webSocket) {
      if (this.#ended) return // see #learn
      this.#openResponse().setAttributes(modelAttributes(model)).updateName(spanName(this.#operation ?? 'chat', model, this.#method, this.#path))
      return
    }
    this.#model = model
    this.#learn(modelAttributes(model), model)
  }

  responseId (id: string): void {
    this.#learn({ 'gen_ai.response.id': id })
  }

  usage (tokens: TokenUsage): void {
    this.#learn(usageAttributes(tokens))
  }

  refusedInStream (code: string): void {
    this.#attempt?.refusedInStream(code)
  }

  clientMessage (startedAt: number): void {
    this.#openResponse(performance.timeOrigin + startedAt)
  }

  responseEvent (type: string | undefined): void {
    if (type === undefined || this.#response === undefined || !TERMINAL_EVENTS.has(type)) return
    // `error` and `response.failed` end a response that failed; its content is never recorded.
    if (type === 'error' || type === 'response.failed') this.#response.setAttribute(ATTR_ERROR_TYPE, type).setStatus({ code: SpanStatusCode.ERROR })
    this.#response.end()
    this.#response = undefined
  }

  end (outcome: ExchangeOutcome): void {
    if (this.#ended) return
    this.#ended = true
    if (this.#response !== undefined) {
      // The connection ended while a response was under way.
      this.#response.setAttribute(ATTR_ERROR_TYPE, 'connection_closed').setStatus({ code: SpanStatusCode.ERROR }).end()
      this.#response = undefined
    }
    this.#attempt?.end(outcome) // a no-op when the relay ended it already
    this.#span.setAttributes(outcomeAttributes(outcome))
    // The upstream of the last attempt: the one that answered, or the last one tried.
    if (this.#attempt !== undefined) this.#span.setAttribute('session_gateway.upstream', this.#attempt.upstream)
    if (isError(outcome)) this.#span.setStatus({ code: SpanStatusCode.ERROR })
    // A WebSocket's responses may use several models: the connection keeps its route's name.
    this.#span.updateName(spanName(this.#operation, this.#webSocket ? undefined : this.#model, this.#method, this.#path))
    this.#span.end()
  }

  /** GenAI facts go on the call's client span: the attempt's, or a WebSocket's response span. */
  #learn (attributes: SpanAttributes, model?: string): void {
    if (this.#webSocket) {
      // An upstream message still inflating when the connection ended reports late: its
      // response was ended as connection_closed, and a new one would never end.
      if (!this.#ended) this.#openResponse().setAttributes(attributes)
      return
    }
    this.#attempt?.learn(attributes, model)
  }

  /**
   * The WebSocket response under way; one starts when the client asks (at `startTime`, its
   * request's first frame, epoch milliseconds) or the upstream answers unasked (now).
   */
  #openResponse (startTime?: number): RecordedSpan {
    if (this.#response !== undefined) return this.#response
    const span = this.#child(spanName(this.#operation ?? 'chat', undefined, this.#method, this.#path), startTime)
      .setAttributes(genAiAttributes(this.#operation ?? 'chat'))
    if (this.#session !== undefined) span.setAttribute('gen_ai.conversation.id', this.#session.id)
    if (this.#attempt !== undefined) span.setAttribute('session_gateway.upstream', this.#attempt.upstream)
    this.#response = span
    return span
  }
}

/** One upstream attempt's client span; its traceparent goes upstream with the request. */
class OtelAttemptSpan implements AttemptSpan {
  readonly traceHeaders: string[]
  readonly #span: RecordedSpan
  readonly #operation: 'chat' | undefined
  readonly #target: AttemptTarget
  #model: string | undefined
  /** The error code its 2xx stream carried instead of a response; the span's `error.type`. */
  #refusedWith: string | undefined
  #ended = false

  constructor (span: RecordedSpan, target: AttemptTarget, operation: 'chat' | undefined, sessionId: string | undefined) {
    this.#target = target
    this.#operation = operation
    this.#span = span.setAttributes(attemptAttributes(target, operation, sessionId))
    this.traceHeaders = traceHeadersOf(this.#span.spanContext())
  }

  get upstream (): string {
    return this.#target.upstream
  }

  learn (attributes: SpanAttributes, model: string | undefined): void {
    if (this.#ended) return
    if (model !== undefined) this.#model = model
    this.#span.setAttributes(attributes)
  }

  refusedInStream (code: string): void {
    if (!this.#ended) this.#refusedWith = code
  }

  end (outcome: Parameters<AttemptSpan['end']>[0]): void {
    if (this.#ended) return
    this.#ended = true
    this.#span.setAttributes(outcomeAttributes(outcome, true))
    // The stream's refusal, unless the exchange failed on its own account too (its error.type then).
    if (this.#refusedWith !== undefined && errorType(outcome, true) === undefined) this.#span.setAttribute(ATTR_ERROR_TYPE, this.#refusedWith)
    if (isError(outcome, true) || this.#refusedWith !== undefined) this.#span.setStatus({ code: SpanStatusCode.ERROR })
    this.#span.updateName(spanName(this.#operation, this.#model, this.#target.method, this.#target.path))
    this.#span.end()
  }
}
