/**
 * The gateway's recorded span against the SDK's own: the same calls, made on both, leave the
 * same span for the processor (name, kind, parent, trace state, attributes in the same order,
 * status), and each is handed over once.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type SpanContext } from '@opentelemetry/api'
import { TraceState } from '@opentelemetry/core'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { AlwaysOnSampler, BasicTracerProvider, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { hrTimeOf, RecordedSpan, type SpanSink } from '../../../src/observe/recorded-span.js'

class Kept implements SpanProcessor {
  readonly spans: ReadableSpan[] = []
  onStart (): void {}
  onEnd (span: ReadableSpan): void { this.spans.push(span) }
  async forceFlush (): Promise<void> {}
  async shutdown (): Promise<void> {}
}

/** Spans into `processor`, as the gateway's tracer makes its sink. */
function sinkInto (processor: SpanProcessor): SpanSink {
  return { processor, resource, scope: { name: 'session-gateway', version: undefined, schemaUrl: undefined } }
}

const resource = resourceFromAttributes({ 'service.name': 'test' })
const clientParent: SpanContext = {
  traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true, traceState: new TraceState('vendor=one')
}

/** The same calls on a span of either kind. */
function exercise (span: Pick<RecordedSpan, 'setAttribute' | 'setAttributes' | 'setStatus' | 'updateName' | 'end'>): void {
  span.setAttributes({ 'http.request.method': 'POST', 'url.path': '/v1/responses' })
  span.setAttribute('session.id', 's-1')
  span.setAttribute('ignored', undefined)
  span.setAttribute('dropped', null)
  span.setAttributes({ 'url.path': '/v1/responses/again', 'gen_ai.usage.input_tokens': 12, 'session_gateway.ttfb_ms': 1.5, flag: true })
  span.setStatus({ code: SpanStatusCode.UNSET })
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream failed' })
  span.updateName('chat gpt-5')
  span.end()
  // After the end nothing changes, and the span is not handed over again.
  span.setAttribute('late', 1)
  span.setStatus({ code: SpanStatusCode.OK })
  span.updateName('late')
  span.end()
}

/** A span's fields, its parent named by role (the SDK's ids are random): the client's span, or the server span `serverSpanId`. */
function shape (span: ReadableSpan, serverSpanId: string): object {
  const context = span.spanContext()
  return {
    name: span.name,
    kind: span.kind,
    attributes: Object.entries(span.attributes),
    status: span.status,
    traceId: context.traceId,
    traceFlags: context.traceFlags,
    traceState: context.traceState?.serialize(),
    parent: span.parentSpanContext?.spanId === clientParent.spanId ? 'client' : span.parentSpanContext?.spanId === serverSpanId ? 'server' : span.parentSpanContext?.spanId,
    parentIsRemote: span.parentSpanContext?.isRemote,
    ended: span.ended,
    links: span.links,
    events: span.events,
    dropped: [span.droppedAttributesCount, span.droppedEventsCount, span.droppedLinksCount],
    resource: span.resource,
    scope: span.instrumentationScope
  }
}

t.test('a server span under a client\'s traceparent, and a client span under it: as the SDK records them', async (t) => {
  const sdkKept = new Kept()
  const provider = new BasicTracerProvider({ resource, sampler: new AlwaysOnSampler(), spanProcessors: [sdkKept] })
  const tracer = provider.getTracer('session-gateway')
  const sdkServer = tracer.startSpan('POST /v1/responses', { kind: SpanKind.SERVER }, trace.setSpanContext(ROOT_CONTEXT, clientParent))
  const sdkClient = tracer.startSpan('POST /v1/responses', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, sdkServer))

  const kept = new Kept()
  const sink = sinkInto(kept)
  const server = new RecordedSpan(sink, 'POST /v1/responses', SpanKind.SERVER, clientParent, 'unused00000000000000000000000000', '00f067aa0ba902b7')
  const client = new RecordedSpan(sink, 'POST /v1/responses', SpanKind.CLIENT, server.spanContext(), server.spanContext().traceId, '53995c3f42cd8ad8')

  for (const span of [sdkClient, sdkServer] as Span[]) exercise(span as unknown as RecordedSpan)
  for (const span of [client, server]) exercise(span)

  t.equal(kept.spans.length, 2, 'each span handed to the processor once')
  t.same(kept.spans.map((span) => shape(span, server.spanContext().spanId)), sdkKept.spans.map((span) => shape(span, sdkServer.spanContext().spanId)), 'the same spans as the SDK\'s')
  t.equal(server.spanContext().traceId, clientParent.traceId, 'the client\'s trace')
  t.equal(client.parentSpanContext?.spanId, '00f067aa0ba902b7', 'the client span is the server span\'s child')
  for (const span of kept.spans) {
    const [seconds, nanos] = span.duration
    t.ok(seconds === 0 && nanos >= 0 && nanos < 1e9, 'a duration, short')
    t.ok(span.endTime[0] * 1e9 + span.endTime[1] >= span.startTime[0] * 1e9 + span.startTime[1], 'it ends after it starts')
  }
})

t.test('a root span takes the trace id it was sampled on; a given start time stands', async (t) => {
  const kept = new Kept()
  const sink = sinkInto(kept)
  const startedAt = Date.now() - 250
  const span = new RecordedSpan(sink, 'GET /v1/models', SpanKind.SERVER, undefined, '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', hrTimeOf(startedAt))
  span.end()
  t.same(span.spanContext(), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, traceState: undefined })
  t.equal(span.parentSpanContext, undefined)
  t.same(span.startTime, hrTimeOf(startedAt))
  t.ok(span.duration[0] * 1e3 + span.duration[1] / 1e6 >= 250 - 1, 'the duration counts from the given start')
})

t.test('a start later than the end (a clock step) lasts nothing, as the SDK\'s span does', async (t) => {
  const kept = new Kept()
  const sink = sinkInto(kept)
  const span = new RecordedSpan(sink, 'x', SpanKind.CLIENT, undefined, '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', hrTimeOf(Date.now() + 60_000))
  span.end()
  t.same(span.duration, [0, 0])
  t.same(span.endTime, span.startTime)
})

t.test('hrTimeOf: epoch milliseconds as [seconds, nanoseconds], the nanoseconds below a second', async (t) => {
  t.same(hrTimeOf(1_700_000_000_123.5), [1_700_000_000, 123_500_000])
  t.same(hrTimeOf(0), [0, 0])
  const [seconds, nanos] = hrTimeOf(1_700_000_000_999.9999999)
  t.ok(nanos < 1e9 && nanos >= 0, `nanoseconds in range (${seconds}, ${nanos})`)
  t.ok(Math.abs(seconds * 1e3 + nanos / 1e6 - 1_700_000_000_999.9999999) < 1e-3, 'the same instant, to the microsecond')
})

t.test('a span started now starts at the wall clock\'s time, and ends its monotonic duration later', async (t) => {
  const kept = new Kept()
  const sink = sinkInto(kept)
  const before = Date.now()
  const span = new RecordedSpan(sink, 'x', SpanKind.SERVER, undefined, '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7')
  const after = Date.now()
  const startMillis = span.startTime[0] * 1e3 + span.startTime[1] / 1e6
  t.ok(startMillis >= before && startMillis <= after, `the start (${startMillis}) is Date.now()'s, between ${before} and ${after}`)
  span.end()
  const endNanos = BigInt(span.endTime[0]) * 1_000_000_000n + BigInt(span.endTime[1])
  const startNanos = BigInt(span.startTime[0]) * 1_000_000_000n + BigInt(span.startTime[1])
  t.equal(endNanos - startNanos, BigInt(span.duration[0]) * 1_000_000_000n + BigInt(span.duration[1]), 'the end is the start plus the duration')
  t.ok(span.endTime[1] < 1e9, 'the end\'s nanoseconds below a second')
})
