/**
 * The OTLP/protobuf body of a batch of spans: byte for byte what the official
 * `ProtobufTraceSerializer` (@opentelemetry/otlp-transformer) writes — a property test holds
 * it to that — at a third to a half of its cost (4.2 against 11.2 µs an exchange in a loop,
 * 8.0 against 12.7 in bench/tracing/span-cost.mjs's exchanges); it was most of what the tracer
 * alone cost (14.6 µs of 19.6 per exchange). The official one walks every
 * span twice (a size estimate, then the write) and every string three times; this one walks
 * each once, assuming ASCII and starting the string again as UTF-8 when it is not.
 *
 * Only what the gateway's spans hold is encoded here: string, number and boolean attributes,
 * no events, no links. A batch with anything else is left to the official serializer whole
 * (recycled-encoding.ts, the exporter's serializer), so the bytes are right whatever reaches it.
 */
import type { HrTime } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'

type Attributes = ReadableSpan['attributes']
type Resource = ReadableSpan['resource']
/** A scope as the official serializer reads it: newer SDKs give scopes attributes of their own. */
type Scope = ReadableSpan['instrumentationScope'] & { attributes?: unknown, droppedAttributesCount?: number }

// Tags: (field << 3) | wire type, wire types 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
const TAG_RESOURCE_SPANS = 0x0a // ExportTraceServiceRequest.resource_spans (1)
const TAG_RESOURCE = 0x0a // ResourceSpans.resource (1)
const TAG_SCOPE_SPANS = 0x12 // ResourceSpans.scope_spans (2)
const TAG_SCOPE = 0x0a // ScopeSpans.scope (1)
const TAG_SPAN = 0x12 // ScopeSpans.spans (2)
const TAG_SCHEMA_URL = 0x1a // ResourceSpans.schema_url and ScopeSpans.schema_url (3)
const TAG_RESOURCE_ATTRIBUTE = 0x0a // Resource.attributes (1)
const TAG_SPAN_ATTRIBUTE = 0x4a // Span.attributes (9)

/** Span.flags: the W3C trace flags, and whether the parent came from another process. */
const FLAGS_HAS_IS_REMOTE = 0x100
const FLAGS_IS_REMOTE = 0x200

const TWO_POW_32 = 0x1_0000_0000
const NANOS_PER_SECOND = 1_000_000_000
/** Integers in [-2^63, 2^63) are int_value (a varint); other numbers are double_value. */
const INT64_MIN = -(2 ** 63)
const INT64_END = 2 ** 63

/** Thrown inside an encoding that meets what only the official serializer encodes. */
class NotOurs extends Error {}
const NOT_OURS = new NotOurs()

/** The size of the last body: a new buffer starts a quarter above it, so a steady stream of batches needs no growing. */
let lastSize = 16 * 1024

/** An encoding: its bytes, and the buffer that holds them (a grown one when the one given was too small). */
export interface EncodedSpans {
  bytes: Uint8Array
  buffer: Buffer
}

/**
 * An ExportTraceServiceRequest holding `spans`, written into `buffer` (a new one if none); undefined
 * if a span holds what only the official serializer encodes.
 */
export function encodeSpans (spans: ReadableSpan[], buffer?: Buffer): EncodedSpans | undefined {
  try {
    return encodeTraceRequest(spans, buffer ?? Buffer.allocUnsafe(lastSize + (lastSize >>> 2)))
  } catch (error) {
    if (error === NOT_OURS) return undefined
    throw error
  }
}

function encodeTraceRequest (spans: ReadableSpan[], buffer: Buffer): EncodedSpans {
  const writer = new Writer(buffer)
  for (const [resource, scopes] of groupByResourceAndScope(spans)) {
    writer.byte(TAG_RESOURCE_SPANS)
    const resourceSpans = writer.startMessage()
    writeResource(writer, resource)
    for (const scopeSpans of scopes.values()) {
      writer.byte(TAG_SCOPE_SPANS)
      writeScopeSpans(writer, scopeSpans[0]!.instrumentationScope, scopeSpans)
    }
    if (resource.schemaUrl) writer.stringField(TAG_SCHEMA_URL, resource.schemaUrl)
    writer.finishMessage(resourceSpans)
  }
  lastSize = Math.max(writer.pos, 1024)
  return { bytes: writer.bytes(), buffer: writer.buffer }
}

/** Spans by resource, then scope, each in first-seen order, by identity: as the official serializer groups them. */
function groupByResourceAndScope (spans: ReadableSpan[]): Map<Resource, Map<Scope, ReadableSpan[]>> {
  const resources = new Map<Resource, Map<Scope, ReadableSpan[]>>()
  for (const span of spans) {
    let scopes = resources.get(span.resource)
    if (scopes === undefined) resources.set(span.resource, scopes = new Map())
    let scoped = scopes.get(span.instrumentationScope)
    if (scoped === undefined) scopes.set(span.instrumentationScope, scoped = [])
    scoped.push(span)
  }
  return resources
}

function writeResource (writer: Writer, resource: Resource): void {
  writer.byte(TAG_RESOURCE)
  const message = writer.startMessage()
  writeAttributes(writer, TAG_RESOURCE_ATTRIBUTE, resource.attributes)
  writer.byte(0x10) // dropped_attributes_count (2): the official serializer writes 0
  writer.byte(0)
  writer.finishMessage(message)
}

function writeScopeSpans (writer: Writer, scope: Scope, spans: ReadableSpan[]): void {
  const message = writer.startMessage()
  if (scope.attributes !== undefined || scope.droppedAttributesCount) throw NOT_OURS
  writer.byte(TAG_SCOPE)
  const scopeMessage = writer.startMessage()
  writer.stringField(0x0a, scope.name) // name (1)
  if (scope.version) writer.stringField(0x12, scope.version) // version (2)
  writer.finishMessage(scopeMessage)
  for (const span of spans) {
    writer.byte(TAG_SPAN)
    writeSpan(writer, span)
  }
  if (scope.schemaUrl) writer.stringField(TAG_SCHEMA_URL, scope.schemaUrl)
  writer.finishMessage(message)
}

/** A Span message, its fields in the official serializer's order (which is the .proto's). */
function writeSpan (writer: Writer, span: ReadableSpan): void {
  if (span.events.length > 0 || span.links.length > 0) throw NOT_OURS
  const message = writer.startMessage()
  const context = span.spanContext()
  writer.hexField(0x0a, context.traceId, 32) // trace_id (1)
  writer.hexField(0x12, context.spanId, 16) // span_id (2)
  const traceState = context.traceState?.serialize()
  if (traceState) writer.stringField(0x1a, traceState) // trace_state (3)
  const parent = span.parentSpanContext
  if (parent?.spanId) writer.hexField(0x22, parent.spanId, 16) // parent_span_id (4)
  writer.stringField(0x2a, span.name) // name (5)
  // The API's kinds count from 0 (INTERNAL); OTLP's from 1, 0 being "unspecified".
  if (span.kind != null) writer.varintField(0x30, span.kind + 1) // kind (6)
  writer.byte(0x39) // start_time_unix_nano (7)
  writer.hrTime(span.startTime)
  writer.byte(0x41) // end_time_unix_nano (8)
  writer.hrTime(span.endTime)
  writeAttributes(writer, TAG_SPAN_ATTRIBUTE, span.attributes)
  writer.varintField(0x50, span.droppedAttributesCount) // dropped_attributes_count (10)
  writer.varintField(0x60, span.droppedEventsCount) // dropped_events_count (12)
  writer.varintField(0x70, span.droppedLinksCount) // dropped_links_count (14)
  writer.byte(0x7a) // status (15)
  const status = writer.startMessage()
  if (span.status.message) writer.stringField(0x12, span.status.message) // message (2)
  writer.varintField(0x18, span.status.code) // code (3)
  writer.finishMessage(status)
  writer.byte(0x85) // flags (16), fixed32: a two-byte tag
  writer.byte(0x01)
  writer.fixed32((context.traceFlags & 0xff) | FLAGS_HAS_IS_REMOTE | (parent?.isRemote === true ? FLAGS_IS_REMOTE : 0))
  writer.finishMessage(message)
}

/** Each attribute as a KeyValue { key (1), value (2): AnyValue }, in the object's key order. */
function writeAttributes (writer: Writer, tag: number, attributes: Attributes): void {
  const keys = Object.keys(attributes)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const value = attributes[key]
    writer.byte(tag)
    const keyValue = writer.startMessage()
    writer.stringField(0x0a, key)
    writer.byte(0x12)
    const anyValue = writer.startMessage()
    if (typeof value === 'string') {
      writer.stringField(0x0a, value) // string_value (1)
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_END) writer.varintField(0x18, value) // int_value (3)
      else writer.double(0x21, value) // double_value (4)
    } else if (typeof value === 'boolean') {
      writer.varintField(0x10, value ? 1 : 0) // bool_value (2)
    } else {
      throw NOT_OURS // arrays, bytes, key-value lists: never the gateway's
    }
    writer.finishMessage(anyValue)
    writer.finishMessage(keyValue)
  }
}

/** Protobuf's primitives over one growing buffer. */
class Writer {
  pos = 0
  #buffer: Buffer

  constructor (buffer: Buffer) {
    this.#buffer = buffer
  }

  get buffer (): Buffer {
    return this.#buffer
  }

  bytes (): Uint8Array {
    return this.#buffer.subarray(0, this.pos)
  }

  byte (value: number): void {
    this.#room(1)
    this.#buffer[this.pos++] = value
  }

  /**
   * Keeps one byte for a nested message's length, which `finishMessage` writes; most of the
   * gateway's (a key-value pair, a status) fit one.
   */
  startMessage (): number {
    this.#room(1)
    return this.pos++
  }

  finishMessage (lengthAt: number): void {
    const length = this.pos - lengthAt - 1
    const size = varintSize(length)
    if (size > 1) {
      this.#room(size - 1)
      this.#buffer.copyWithin(lengthAt + size, lengthAt + 1, this.pos)
      this.pos += size - 1
    }
    writeVarint32(this.#buffer, lengthAt, length)
  }

  stringField (tag: number, text: string): void {
    const length = text.length
    this.#room(1 + 5 + 3 * length)
    const buffer = this.#buffer
    buffer[this.pos] = tag
    // Written as ASCII, whose length is the string's: one pass over it.
    let at = this.pos + 1 + varintSize(length)
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i)
      if (code > 0x7f) { this.#utf8String(text); return }
      buffer[at++] = code
    }
    writeVarint32(buffer, this.pos + 1, length)
    this.pos = at
  }

  /** Lone surrogates become U+FFFD, as TextEncoder writes them. */
  #utf8String (text: string): void {
    const length = Buffer.byteLength(text, 'utf8')
    const at = writeVarint32(this.#buffer, this.pos + 1, length)
    this.pos = at + this.#buffer.write(text, at, 'utf8')
  }

  /** A span or trace id, `digits` hex digits, as the bytes they spell. */
  hexField (tag: number, hex: string, digits: number): void {
    if (hex.length !== digits) throw NOT_OURS
    this.#room(2 + digits / 2)
    const buffer = this.#buffer
    buffer[this.pos++] = tag
    buffer[this.pos++] = digits / 2
    for (let i = 0; i < digits; i += 2) buffer[this.pos++] = (hexValue(hex.charCodeAt(i)) << 4) | hexValue(hex.charCodeAt(i + 1))
  }

  varintField (tag: number, value: number): void {
    this.#room(11)
    this.#buffer[this.pos++] = tag
    if (value >= 0 && value < TWO_POW_32) {
      this.pos = writeVarint32(this.#buffer, this.pos, value)
      return
    }
    // Past 32 bits, and negatives as their 64-bit two's complement: ten bytes.
    let low = value >>> 0
    let high = Math.floor(value / TWO_POW_32) >>> 0
    if (value < 0) {
      const magnitude = -value
      low = ~(magnitude >>> 0) >>> 0
      high = ~(Math.floor(magnitude / TWO_POW_32) >>> 0) >>> 0
      low = (low + 1) >>> 0
      if (low === 0) high = (high + 1) >>> 0
    }
    while (high > 0 || low > 0x7f) {
      this.#buffer[this.pos++] = (low & 0x7f) | 0x80
      low = ((low >>> 7) | (high << 25)) >>> 0
      high >>>= 7
    }
    this.#buffer[this.pos++] = low
  }

  double (tag: number, value: number): void {
    this.#room(9)
    this.#buffer[this.pos++] = tag
    this.pos = this.#buffer.writeDoubleLE(value, this.pos)
  }

  fixed32 (value: number): void {
    this.#room(4)
    this.pos = this.#buffer.writeUInt32LE(value >>> 0, this.pos)
  }

  /**
   * [seconds, nanoseconds] as fixed64 nanoseconds. seconds × 1e9 is past 2^53 for today's
   * dates, so seconds is split at 2^16 and each half multiplied exactly.
   */
  hrTime ([seconds, nanos]: HrTime): void {
    this.#room(8)
    const lowPart = (seconds % 0x1_0000) * NANOS_PER_SECOND // < 2^46
    const highPart = Math.floor(seconds / 0x1_0000) * NANOS_PER_SECOND // to be shifted left 16
    const sum = (lowPart % TWO_POW_32) + (highPart % 0x1_0000) * 0x1_0000 + nanos
    const low = sum >>> 0
    const high = Math.floor(lowPart / TWO_POW_32) + Math.floor(highPart / 0x1_0000) + Math.floor(sum / TWO_POW_32)
    this.#buffer.writeUInt32LE(low, this.pos)
    this.#buffer.writeUInt32LE(high >>> 0, this.pos + 4)
    this.pos += 8
  }

  #room (bytes: number): void {
    if (this.pos + bytes <= this.#buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.pos + bytes))
    this.#buffer.copy(grown, 0, 0, this.pos)
    this.#buffer = grown
  }
}

function varintSize (value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x20_0000 ? 3 : value < 0x1000_0000 ? 4 : 5
}

/** Writes `value` (below 2^32) as a varint at `at`; returns where it ended. */
function writeVarint32 (buffer: Buffer, at: number, value: number): number {
  while (value > 0x7f) {
    buffer[at++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  buffer[at++] = value
  return at
}

/** 0-9, a-f and A-F; anything else reads as the official hexToBinary reads it. */
function hexValue (code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x61 && code <= 0x66) return code - 0x57
  return code - 0x37
}
