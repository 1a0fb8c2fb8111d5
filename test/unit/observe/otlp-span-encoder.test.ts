/**
 * The gateway's OTLP/protobuf encoder against the official serializer it stands in for: the
 * same bytes for every batch, built by the real SDK from random spans (ids, parents local and
 * remote, trace state, kinds, times, statuses, string, number and boolean attributes of every
 * shape, several resources and scopes); and the batches it leaves to the official one (events,
 * links, array values) are recognised rather than encoded wrongly.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type AttributeValue, type Context } from '@opentelemetry/api'
import { ExportResultCode, TraceState } from '@opentelemetry/core'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { AlwaysOnSampler, BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { tracingFromEnv } from '../../../src/config/tracing-env.js'
import { createOtelTracer } from '../../../src/observe/otel-tracer.js'
import { encodeSpans } from '../../../src/observe/otlp-span-encoder.js'
import { recycledEncoding } from '../../../src/observe/recycled-encoding.js'
import { randomFrom, type Random } from '../../support/json-bodies.js'

const pick = <T>(random: Random, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!

const TEXT_BITS = ['', 'a', 'POST', '/v1/responses', 'gpt-5', ' ', 'é', '€', '😀', '\ud800', '\udc00x', '\u0000', '\u007f', '\u0080', 'x'.repeat(130), 'y'.repeat(20_000)]
const NUMBERS = [0, -0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 53, 2 ** 62, 2 ** 63, -(2 ** 63), -1, -128, -(2 ** 32), -(2 ** 40) - 7, 1.5, -0.25, 1e300, Number.NaN, Infinity, -Infinity]
const KEYS = ['http.request.method', 'gen_ai.usage.input_tokens', 'session.id', 'k', '1', '42', 'clé', '🔑', 'z'.repeat(140)]

function randomText (random: Random): string {
  let text = ''
  const parts = Math.floor(random() * 4)
  for (let i = 0; i < parts; i++) text += pick(random, TEXT_BITS)
  return text
}

function randomValue (random: Random): AttributeValue {
  const roll = random()
  if (roll < 0.45) return randomText(random)
  if (roll < 0.8) return pick(random, NUMBERS)
  return random() < 0.5
}

function randomAttributes (random: Random): Attributes {
  const attributes: Attributes = {}
  const count = Math.floor(random() * 12)
  for (let i = 0; i < count; i++) attributes[random() < 0.6 ? pick(random, KEYS) : randomText(random) || 'k'] = randomValue(random)
  return attributes
}

function hex (random: Random, digits: number): string {
  let text = ''
  while (text.length < digits) text += Math.floor(random() * 16).toString(16)
  return text === '0'.repeat(digits) ? '1' + text.slice(1) : text
}

/** A remote parent (a client's traceparent), a local one, or none. */
function randomParent (random: Random, local: Context | undefined): Context {
  const roll = random()
  if (roll < 0.3) return ROOT_CONTEXT
  if (roll < 0.6 && local !== undefined) return local
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: hex(random, 32),
    spanId: hex(random, 16),
    traceFlags: random() < 0.5 ? 1 : 0,
    isRemote: random() < 0.8,
    ...(random() < 0.4 ? { traceState: new TraceState(`vendor=${hex(random, 6)},other=x`) } : {})
  })
}

/** Ended spans from several providers (resources) and tracers (scopes), as a batch. */
function randomBatch (random: Random, extras: boolean): ReadableSpan[] {
  const spans: ReadableSpan[] = []
  const exporter: SpanExporter = { export: (batch, done) => { spans.push(...batch); done({ code: ExportResultCode.SUCCESS }) }, shutdown: async () => {} }
  const providers = Array.from({ length: 1 + Math.floor(random() * 2) }, (_, i) => new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `svc-${i}`, ...randomAttributes(random) }),
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new SimpleSpanProcessor(exporter)]
  }))
  const tracers = providers.flatMap((provider) => [provider.getTracer('session-gateway'), provider.getTracer('other', random() < 0.5 ? '1.2.3' : undefined)])
  let local: Context | undefined
  const count = 1 + Math.floor(random() * 8)
  for (let i = 0; i < count; i++) {
    const start = 1_764_000_000_000 + random() * 1e10
    const span = pick(random, tracers).startSpan(randomText(random), {
      kind: pick(random, [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER]),
      attributes: randomAttributes(random),
      startTime: start
    }, randomParent(random, local))
    local = trace.setSpan(ROOT_CONTEXT, span)
    span.setAttributes(randomAttributes(random))
    const status = random()
    if (status < 0.3) span.setStatus({ code: SpanStatusCode.ERROR, ...(random() < 0.5 ? { message: randomText(random) } : {}) })
    else if (status < 0.5) span.setStatus({ code: SpanStatusCode.OK })
    if (extras) {
      const extra = random()
      if (extra < 0.4) span.addEvent('event', { n: 1 })
      else if (extra < 0.7) span.addLink({ context: { traceId: hex(random, 32), spanId: hex(random, 16), traceFlags: 1 } })
      else span.setAttribute('list', ['a', 'b'])
    }
    span.end(start + random() * 1e6)
  }
  return spans
}

t.test('random batches: the same bytes as the official serializer', async (t) => {
  for (let seed = 1; seed <= 400; seed++) {
    const spans = randomBatch(randomFrom(seed), false)
    // Every other batch into a reused buffer, dirty and often too small: it grows, and old bytes never show.
    const ours = encodeSpans(spans, seed % 2 === 0 ? Buffer.alloc(seed * 7, 0xff) : undefined)?.bytes
    if (ours === undefined) { t.fail(`seed ${seed}: left to the official serializer`); continue }
    const official = ProtobufTraceSerializer.serializeRequest(spans)!
    if (Buffer.compare(Buffer.from(ours), Buffer.from(official)) !== 0) {
      t.fail(`seed ${seed}: ${ours.length} bytes, the official serializer ${official.length}; first difference at ${Buffer.from(ours).findIndex((byte, i) => byte !== official[i])}`)
    }
  }
  t.pass('400 batches compared')
})

t.test('a batch holding events, links or array values goes to the official serializer whole', async (t) => {
  for (let seed = 1; seed <= 50; seed++) {
    const spans = randomBatch(randomFrom(seed), true)
    t.equal(encodeSpans(spans), undefined, `seed ${seed}: not encoded here`)
    t.same(Buffer.from(recycledEncoding().serializer.serializeRequest(spans)!), Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!), `seed ${seed}: the official bytes`)
  }
})

t.test('the gateway\'s own spans are encoded here, with the official bytes', async (t) => {
  const spans: ReadableSpan[] = []
  const exporter: SpanExporter = { export: (batch, done) => { spans.push(...batch); done({ code: ExportResultCode.SUCCESS }) }, shutdown: async () => {} }
  const tracer = await createOtelTracer(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test' }), { exporter })
  const request = { method: 'POST', headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } } as never
  for (const status of [200, 503]) {
    const span = tracer.startExchange(request, 'http', '/v1/responses')
    span.admitted({ id: 'session-é', source: 'header' })
    const attempt = span.startAttempt({ upstream: 'primary', origin: 'http://127.0.0.1:9000', method: 'POST', path: '/v1/responses' })
    span.responseModel('gpt-5')
    span.responseId('resp_1')
    span.usage({ input: 1200, cached: 1024, output: 30, reasoning: 0 })
    const outcome = { status, endedBy: 'complete' as const, ttfbMs: 12.3, bytesOut: 2000 }
    attempt.end(outcome)
    span.end(outcome)
  }
  await tracer.shutdown(5_000)
  t.equal(spans.length, 4)
  const ours = encodeSpans(spans)?.bytes
  t.ok(ours, 'not left to the official serializer')
  t.same(Buffer.from(ours!), Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!))
})
