/**
 * Buffers lent to exports: an export's bytes stay as encoded until it calls back, however many
 * exports encode meanwhile; once it has succeeded, the next export writes into the same memory,
 * and after a failure (the body may still be being sent) never.
 * The inner exporter keeps the OTLP delegate's contract: it encodes inside `export` and calls
 * back later, once.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { recycledEncoding } from '../../../src/observe/recycled-encoding.js'

function spansNamed (prefix: string, count: number): ReadableSpan[] {
  const spans: ReadableSpan[] = []
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ export: (batch, done) => { spans.push(...batch); done({ code: ExportResultCode.SUCCESS }) }, shutdown: async () => {} })]
  })
  const tracer = provider.getTracer('test')
  for (let i = 0; i < count; i++) tracer.startSpan(`${prefix}-${i}`, { attributes: { 'session.id': `${prefix}-session-${i}` } }).end()
  return spans
}

interface Sent { bytes: Uint8Array, copy: Buffer, done: (result: ExportResult) => void }

/** Encodes as the delegate does, inside `export`, and leaves the callback to the test. */
function holdingExporter (serialize: (spans: ReadableSpan[]) => Uint8Array | undefined): SpanExporter & { sent: Sent[] } {
  const sent: Sent[] = []
  return {
    sent,
    export (spans, done) {
      const bytes = serialize(spans)!
      sent.push({ bytes, copy: Buffer.from(bytes), done })
    },
    shutdown: async () => {}
  }
}

const sameMemory = (a: Uint8Array, b: Uint8Array): boolean => a.buffer === b.buffer && a.byteOffset === b.byteOffset

t.test('an export holds its buffer until it calls back; then the next one reuses it', async (t) => {
  const encoding = recycledEncoding()
  const inner = holdingExporter((spans) => encoding.serializer.serializeRequest(spans))
  const exporter = encoding.recycling(inner)
  const results: number[] = []
  const first = spansNamed('first', 40)
  exporter.export(first, (r) => results.push(r.code))
  exporter.export(spansNamed('second', 40), (r) => results.push(r.code))
  exporter.export(spansNamed('third', 3), (r) => results.push(r.code))
  const [a, b, c] = inner.sent
  t.notOk(sameMemory(a!.bytes, b!.bytes), 'two exports in flight: two buffers')
  t.notOk(sameMemory(a!.bytes, c!.bytes))
  t.same(Buffer.from(a!.bytes), a!.copy, 'the first export\'s bytes untouched by the encodings after it')
  t.same(Buffer.from(a!.bytes), Buffer.from(ProtobufTraceSerializer.serializeRequest(first)!), 'and the official bytes')

  a!.done({ code: ExportResultCode.SUCCESS })
  a!.done({ code: ExportResultCode.SUCCESS }) // a second call gives nothing back twice
  t.same(results, [ExportResultCode.SUCCESS, ExportResultCode.SUCCESS], 'each callback passed on')
  const fourth = spansNamed('fourth', 5)
  exporter.export(fourth, () => {})
  exporter.export(spansNamed('fifth', 5), () => {})
  const [, , , d, e] = inner.sent
  t.ok(sameMemory(a!.bytes, d!.bytes), 'the buffer given back is written again')
  t.notOk(sameMemory(d!.bytes, e!.bytes), 'and lent to one export only, though given back twice')
  t.same(Buffer.from(d!.bytes), Buffer.from(ProtobufTraceSerializer.serializeRequest(fourth)!), 'reused memory, the official bytes')
  t.same(Buffer.from(b!.bytes), b!.copy, 'the second export, still in flight, untouched')
})

t.test('outside an export the serializer lends nothing: each encoding has memory of its own', async (t) => {
  const encoding = recycledEncoding()
  const inner = holdingExporter((spans) => encoding.serializer.serializeRequest(spans))
  const exporter = encoding.recycling(inner)
  exporter.export(spansNamed('lent', 4), () => {})
  inner.sent[0]!.done({ code: ExportResultCode.SUCCESS }) // a free buffer now waits
  const one = encoding.serializer.serializeRequest(spansNamed('one', 4))!
  const two = encoding.serializer.serializeRequest(spansNamed('two', 4))!
  t.notOk(sameMemory(one, inner.sent[0]!.bytes), 'the free buffer is for exports')
  t.notOk(sameMemory(one, two))
})

t.test('a failed export keeps its buffer: a refusal may come while its body is still being sent', async (t) => {
  const encoding = recycledEncoding()
  const inner = holdingExporter((spans) => encoding.serializer.serializeRequest(spans))
  const exporter = encoding.recycling(inner)
  exporter.export(spansNamed('refused', 30), () => {})
  inner.sent[0]!.done({ code: ExportResultCode.FAILED, error: new Error('413') })
  exporter.export(spansNamed('next', 30), () => {})
  t.notOk(sameMemory(inner.sent[0]!.bytes, inner.sent[1]!.bytes), 'the next export writes elsewhere')
  t.same(Buffer.from(inner.sent[0]!.bytes), inner.sent[0]!.copy, 'the refused body untouched')
})

t.test('a batch left to the official serializer gives the buffer it was lent back', async (t) => {
  const encoding = recycledEncoding()
  const inner = holdingExporter((spans) => encoding.serializer.serializeRequest(spans))
  const exporter = encoding.recycling(inner)
  exporter.export(spansNamed('first', 10), () => {})
  inner.sent[0]!.done({ code: ExportResultCode.SUCCESS })
  const withEvent = spansNamed('event', 1)
  ;(withEvent[0]!.events as unknown[]).push({ name: 'e', time: [0, 0], attributes: {}, droppedAttributesCount: 0 })
  exporter.export(withEvent, () => {})
  t.same(Buffer.from(inner.sent[1]!.bytes), Buffer.from(ProtobufTraceSerializer.serializeRequest(withEvent)!), 'the official bytes')
  exporter.export(spansNamed('after', 10), () => {})
  t.ok(sameMemory(inner.sent[0]!.bytes, inner.sent[2]!.bytes), 'the free buffer is still there for the next')
})
