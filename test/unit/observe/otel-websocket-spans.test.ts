/**
 * A WebSocket's response spans, on the real SDK with an in-memory exporter: what reaches the
 * exporter is what a collector would get.
 */
import type { IncomingMessage } from 'node:http'
import { ExportResultCode } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { tracingFromEnv } from '../../../src/config/tracing-env.js'
import { createOtelTracer } from '../../../src/observe/otel-tracer.js'

const UPGRADE = { method: 'GET', headers: {} } as unknown as IncomingMessage

/** Keeps what it is given past shutdown (the SDK's in-memory exporter forgets it there). */
function keepingExporter (): SpanExporter & { spans: ReadableSpan[] } {
  const spans: ReadableSpan[] = []
  return {
    spans,
    export: (batch, done) => { spans.push(...batch); done({ code: ExportResultCode.SUCCESS }) },
    shutdown: async () => {}
  }
}

t.test('facts an upstream message reports after the connection ended open no response span', async (t) => {
  const exporter = keepingExporter()
  const tracer = await createOtelTracer(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }), { exporter })
  const span = tracer.startExchange(UPGRADE, 'websocket', '/v1/responses')
  span.admitted({ id: 's-late', source: 'header' })
  span.clientMessage(performance.now())
  span.end({ status: 101, endedBy: 'client', ttfbMs: 1, bytesOut: 10, webSocket: { bytesIn: 10, closeCode: 1000, closedBy: 'client' } })
  // A compressed upstream message was still inflating: its model, usage and terminal event come now.
  span.responseModel('gpt-5')
  span.usage({ input: 10, cached: 0, output: 1, reasoning: 0 })
  span.responseEvent('response.completed')
  await tracer.shutdown(5_000)
  const spans = exporter.spans
  t.same(spans.map((s) => s.kind).sort(), [1, 2], 'the connection\'s server span and the response it cut, nothing more')
  const response = spans.find((s) => s.kind === 2)!
  t.equal(response.attributes['error.type'], 'connection_closed')
  t.equal(response.attributes['gen_ai.usage.input_tokens'], undefined, 'the late usage is not put on a span that ended')
})
