/**
 * Says in the log when spans stop reaching the collector, and when they reach it again. The
 * OTLP exporters report a failed export only to the batch processor, which drops the batch
 * without a word: a collector that is down, refuses the headers or is the wrong URL would
 * otherwise look like a gateway that traces nothing. Wraps the exporter, so nothing is
 * registered globally (no `diag` logger) and a host application's logging is left alone.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { Logger } from './logger.js'

/** While exports keep failing, one warning per this many milliseconds at most. */
const REPEAT_WARNING_MS = 60_000

export function reportingExporter (exporter: SpanExporter, logger: Logger, endpoint: string): SpanExporter {
  let failing = false
  let lostSpans = 0
  let warnedAt = -Infinity

  const onResult = (spans: number, result: ExportResult): void => {
    if (result.code === ExportResultCode.SUCCESS) {
      if (failing) logger.info({ endpoint, lost_spans: lostSpans }, 'tracing: spans reach the collector again')
      failing = false
      lostSpans = 0
      return
    }
    lostSpans += spans
    const now = performance.now()
    if (failing && now - warnedAt < REPEAT_WARNING_MS) return
    failing = true
    warnedAt = now
    // The exporter's error names the cause (refused, timeout, a status); never a header value.
    logger.warn({ endpoint, lost_spans: lostSpans, err: result.error?.message }, 'tracing: exporting spans failed; they are dropped')
  }

  return {
    export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
      exporter.export(spans, (result) => {
        onResult(spans.length, result)
        done(result)
      })
    },
    shutdown: async () => { await exporter.shutdown() },
    forceFlush: async () => { await exporter.forceFlush?.() }
  }
}
