/**
 * OTLP/protobuf exports written into buffers reused from one export to the next. A fresh
 * buffer for every batch cost more than the encoding itself: in bench/tracing/span-cost.mjs,
 * 8.0 µs an exchange (wall time) to encode into new memory, its pages faulted in as they are
 * first written (0.3 MB a batch of the default 512 spans, 1.1 MB at the bench's 2,048),
 * against 4.4 into memory written before.
 *
 * A buffer is lent to one export: the exporter's delegate encodes synchronously inside
 * `export` and calls back once its request has had its answer. Only a success means the
 * collector read the whole body; a refusal can come before it has (a 413 at the headers)
 * while the rest is still being sent from the buffer, so a failed export's buffer is never
 * reused. Exports in flight together each hold their own.
 */
import { ExportResultCode } from '@opentelemetry/core'
import type { IExportTraceServiceResponse, ISerializer } from '@opentelemetry/otlp-transformer'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import { encodeSpans } from './otlp-span-encoder.js'

/** Free buffers kept: one export at a time is the batch processor's usual pace. */
const FREE_KEPT = 2
/** A buffer grown past this by an unusual batch is not kept: memory held for good. */
const LARGEST_KEPT = 8 * 1024 * 1024

export interface RecycledEncoding {
  /** Encodes into a free buffer when called inside an export of `recycling`'s exporter. */
  readonly serializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse>
  /** `exporter`, whose `export` encodes with `serializer`, lending each export the buffer it encodes into. */
  recycling: (exporter: SpanExporter) => SpanExporter
}

export function recycledEncoding (): RecycledEncoding {
  const free: Buffer[] = []
  /** Inside an export: what it encoded into, once it has. */
  let lease: { buffer: Buffer | undefined } | undefined

  function giveBack (buffer: Buffer): void {
    if (free.length < FREE_KEPT && buffer.length <= LARGEST_KEPT) free.push(buffer)
  }

  const serializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
    serializeRequest (spans) {
      const lent = lease === undefined ? undefined : free.pop()
      const encoded = encodeSpans(spans, lent)
      if (encoded === undefined) {
        if (lent !== undefined) giveBack(lent)
        return ProtobufTraceSerializer.serializeRequest(spans)
      }
      if (lease !== undefined) lease.buffer = encoded.buffer
      return encoded.bytes
    },
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data)
  }

  function recycling (exporter: SpanExporter): SpanExporter {
    return {
      export (spans, done) {
        const current: { buffer: Buffer | undefined } = { buffer: undefined }
        lease = current
        try {
          exporter.export(spans, (result) => {
            // Once: a second call must not put one buffer in the free list twice.
            if (current.buffer !== undefined && result.code === ExportResultCode.SUCCESS) giveBack(current.buffer)
            current.buffer = undefined
            done(result)
          })
        } finally {
          lease = undefined
        }
      },
      shutdown: async () => { await exporter.shutdown() },
      ...(exporter.forceFlush === undefined ? {} : { forceFlush: async () => { await exporter.forceFlush!() } })
    }
  }

  return { serializer, recycling }
}
