/**
 * Runs the span and OTLP-encoding code on made-up exchanges before the first real export, so
 * V8 optimises it on the spans it will see, before the process is busy. Measured in the gateway
 * under bench scenario (a)'s load (before the gateway had its own encoder, otlp-span-encoder.ts,
 * which is warmed the same way): the official protobuf serializer, first optimised in a
 * loaded process, cost 35–62 µs per span pair for the rest of the run, and 16–30 once warmed
 * like this (one process, the same batches, a warmed and a cold copy of the module taking
 * turns; one run of a smaller warm-up, 32 × 4, barely helped: the outcome is V8's). CPU per
 * request with tracing on went from +60–67 µs over tracing off to +36–43 (2 runs of 8
 * alternating rounds). It adds 60–100 ms to the start, with tracing on only. Nothing made here
 * leaves the process.
 */
import type { IncomingMessage } from 'node:http'
import type { Context } from '@opentelemetry/api'
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer'
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { OtlpProtocol } from '../config/tracing-env.js'
import type { ExchangeOutcome } from '../proxy/exchange.js'
import { encodeSpans } from './otlp-span-encoder.js'
import type { ExchangeTracer } from './tracing.js'

/** Enough for V8 to optimise the encoder with what it calls inlined (fewer left it cold in some runs). */
const EXCHANGES = 128
const ENCODINGS = 8

/** Spans ended on a tracer that exports nothing: kept here to be encoded, then dropped. */
class KeptSpans implements SpanProcessor {
  readonly spans: ReadableSpan[] = []
  onStart (_span: Span, _context: Context): void {}
  onEnd (span: ReadableSpan): void { this.spans.push(span) }
  async forceFlush (): Promise<void> {}
  async shutdown (): Promise<void> {}
}

/**
 * `tracerOn(processor)` is the gateway's tracer with its spans going to `processor` only; they
 * are encoded for `protocol` and thrown away.
 */
export function warmUpExport (protocol: OtlpProtocol, tracerOn: (processor: SpanProcessor) => ExchangeTracer): void {
  const kept = new KeptSpans()
  const tracer = tracerOn(kept)
  for (let i = 0; i < EXCHANGES; i++) madeUpExchange(tracer, i)
  for (let i = 0; i < ENCODINGS; i++) {
    if (protocol === 'http/json') JsonTraceSerializer.serializeRequest(kept.spans)
    else encodeSpans(kept.spans)
  }
}

const REQUEST = { method: 'POST', headers: {} } as unknown as IncomingMessage

/** A streamed model call as scenario (a) makes it, its times and counts varied as real ones are. */
function madeUpExchange (tracer: ExchangeTracer, i: number): void {
  const span = tracer.startExchange(REQUEST, 'http', '/v1/responses')
  span.admitted({ id: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`, source: 'connection' })
  const attempt = span.startAttempt({ upstream: 'default', origin: 'http://127.0.0.1:8080', method: 'POST', path: '/v1/responses' })
  span.responseModel('warm-up-model')
  span.responseId(`resp_warm_up_${i}`)
  span.usage({ input: 1000 + i, cached: i % 2 === 0 ? 0 : 512, output: 20 + i, reasoning: 0 })
  const outcome: ExchangeOutcome = { status: 200, endedBy: 'complete', ttfbMs: i % 3 === 0 ? 12 : 12.3 + i / 10, bytesOut: 2567 }
  attempt.end(outcome)
  span.end(outcome)
}
