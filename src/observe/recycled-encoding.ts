/**
 * OTLP/protobuf exports written into buffers reused from one export to the next. A fresh
 * buffer for every batch cost more than the encoding itself: in bench/tracing/span-cost.mjs,
 * 8.0 µs an exchange to encode into new memory (a 1–2 MB body every thousand exchanges, its
 * pages faulted in as they are first written) against 4.4 into memory written before.
 *
 * A buffer is lent to one export: the exporter's delegate encodes synchronously inside
 * `export` and calls back once its request has ended (sent and answered, failed, or timed
 * out and destroyed), and only then is the buffer free for the next. Exports in flight
 * together each hold their own. A collector that answers before it has read a whole body
 * (refusing it early) may read the rest of it from the next batch: that request has had its
 * answer, and its framing (Content-Length) holds.
 */
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
      const encoded = encodeSpans(spans, lease === undefined ? undefined : free.pop())
      if (encoded === undefined) return ProtobufTraceSerializer.serializeRequest(spans)
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
            if (current.buffer !== undefined) giveBack(current.buffer)
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
