/**
 * A test-only OTLP/HTTP trace receiver: a node:http server on loopback that accepts
 * `POST /v1/traces` as an OpenTelemetry collector does and decodes what the exporter really
 * sent, OTLP/JSON as is and OTLP/protobuf with the ExportTraceServiceRequest definitions
 * below (the subset of opentelemetry-proto's trace.proto the gateway's spans use; protobuf
 * skips the fields left out). Every request's raw bytes are kept, for "never contains" checks.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { gunzipSync } from 'node:zlib'
import protobuf from 'protobufjs'

const TRACE_PROTO = `
syntax = "proto3";
package opentelemetry.proto;
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; string version = 2; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`
const ExportTraceServiceRequest = protobuf.parse(TRACE_PROTO, { keepCase: false }).root.lookupType('opentelemetry.proto.ExportTraceServiceRequest')

/** OTLP's SpanKind numbers. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const
/** OTLP's status codes. */
export const STATUS = { unset: 0, ok: 1, error: 2 } as const

export type AttributeValue = string | number | boolean
export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  traceState: string
  name: string
  kind: number
  statusCode: number
  attributes: Record<string, AttributeValue>
  resource: Record<string, AttributeValue>
}

export interface ReceivedExport {
  contentType: string
  headers: IncomingHttpHeaders
  /** As decoded: a gzipped body (`content-encoding: gzip`) is unzipped. */
  body: Buffer
  /** Over TLS, the subject CN of the client certificate the exporter presented, if any. */
  clientCertificate?: string
}

/** Serve HTTPS with this PEM certificate and key; with `ca`, ask for a client certificate and accept only one it signed. */
export interface ReceiverTls { cert: Buffer, key: Buffer, ca?: Buffer }

export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT` (`https://…` over TLS): what OTEL_EXPORTER_OTLP_ENDPOINT is set to. */
  url: string
  spans: ReceivedSpan[]
  exports: ReceivedExport[]
  /** Resolves with every span received so far, once `predicate` holds for them. */
  waitForSpans: (predicate: (spans: ReceivedSpan[]) => boolean) => Promise<ReceivedSpan[]>
  close: () => Promise<void>
}

export async function startOtlpReceiver ({ tls }: { tls?: ReceiverTls } = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const exports: ReceivedExport[] = []
  const waiters: Array<{ predicate: (spans: ReceivedSpan[]) => boolean, resolve: (spans: ReceivedSpan[]) => void }> = []
  const receive = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      const sent = Buffer.concat(chunks)
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(sent) : sent
      const contentType = req.headers['content-type'] ?? ''
      const peer = tls?.ca === undefined ? undefined : (req.socket as TLSSocket).getPeerCertificate()
      exports.push({ contentType, headers: req.headers, body, ...(peer === undefined ? {} : { clientCertificate: String(peer.subject?.CN ?? '') }) })
      const json = contentType.startsWith('application/json')
      spans.push(...(json ? spansFromJson(JSON.parse(body.toString('utf8'))) : spansFromProtobuf(body)))
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
      res.end(json ? '{}' : '')
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.predicate(spans)) waiters.splice(i, 1)[0]!.resolve(spans)
      }
    })
  }
  const server = tls === undefined
    ? createServer(receive)
    : createTlsServer({ cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca, requestCert: true, rejectUnauthorized: true }) }, receive)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    spans,
    exports,
    waitForSpans: async (predicate) => predicate(spans) ? spans : await new Promise((resolve) => waiters.push({ predicate, resolve })),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

interface OtlpKeyValue { key: string, value?: Record<string, unknown> }
interface OtlpSpan {
  traceId: string | Uint8Array
  spanId: string | Uint8Array
  parentSpanId?: string | Uint8Array
  traceState?: string
  name: string
  kind?: number
  status?: { code?: number }
  attributes?: OtlpKeyValue[]
}
interface OtlpRequest { resourceSpans?: Array<{ resource?: { attributes?: OtlpKeyValue[] }, scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> }

function spansFromProtobuf (body: Buffer): ReceivedSpan[] {
  const message = ExportTraceServiceRequest.decode(body)
  return spansFromJson(ExportTraceServiceRequest.toObject(message, { longs: Number, arrays: true }) as OtlpRequest)
}

/** OTLP/JSON (ids as hex strings) and the decoded protobuf (ids as bytes) share one shape. */
function spansFromJson (request: OtlpRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = []
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributeMap(resourceSpans.resource?.attributes)
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        out.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          traceState: span.traceState ?? '',
          name: span.name,
          kind: span.kind ?? 0,
          statusCode: span.status?.code ?? 0,
          attributes: attributeMap(span.attributes),
          resource
        })
      }
    }
  }
  return out
}

function hex (id: string | Uint8Array | undefined): string {
  if (id === undefined) return ''
  return typeof id === 'string' ? id.toLowerCase() : Buffer.from(id).toString('hex')
}

function attributeMap (attributes: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {}
  for (const { key, value = {} } of attributes ?? []) {
    if (value.stringValue !== undefined) out[key] = value.stringValue as string
    else if (value.boolValue !== undefined) out[key] = value.boolValue as boolean
    else if (value.intValue !== undefined) out[key] = Number(value.intValue)
    else if (value.doubleValue !== undefined) out[key] = Number(value.doubleValue)
  }
  return out
}
