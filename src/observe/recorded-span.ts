/**
 * A sampled span of the gateway's, recorded for the official batch processor and exporters.
 *
 * The SDK's tracer and span do, per span, what the gateway needs none of: a context lookup,
 * a second sampling call, its tracer metrics, sanitising (empty) attribute and link lists, a
 * check of each attribute's type, key and count. Here a span is one object whose attributes
 * the gateway sets from typed values (span-attributes.ts: strings, numbers, never content),
 * ended once, then handed to the official batch processor as the SDK's span would be: a
 * `ReadableSpan` with the same fields, encoded by the same serializers
 * (test/unit/observe/recorded-span.test.ts compares the two). Paired (bench/paired.mjs, Node 20,
 * every request sampled), CPU per request fell to 0.960× the SDK's spans (bench/HISTORY.md, Tracing, session 16).
 *
 * What it leaves out, on purpose: events and links (the gateway adds none); the check of each
 * value's type (span-attributes.ts types them: strings, numbers, booleans); attribute limits
 * (the gateway's spans hold some twenty short attributes, under the SDK's default 128 and with
 * no length limit, the limits the gateway gave the SDK); `onStart` (the batch processor's does
 * nothing); the SDK's diagnostics for misuse (a second `end` or a change after it is ignored,
 * silently).
 */
import { SpanStatusCode, TraceFlags, type Attributes, type AttributeValue, type HrTime, type Link, type SpanContext, type SpanKind, type SpanStatus } from '@opentelemetry/api'
import { addHrTimes, hrTimeDuration, millisToHrTime } from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base'

type InstrumentationScope = ReadableSpan['instrumentationScope']

/** Where a tracer's spans go, and what every one of them shares. */
export interface SpanSink {
  processor: SpanProcessor
  resource: Resource
  scope: InstrumentationScope
}

const NO_LINKS: Link[] = []
const NO_EVENTS: TimedEvent[] = []
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET }

const NO_TIME: HrTime = [0, 0]

/**
 * Epoch milliseconds as `[seconds, nanoseconds]`: core's `millisToHrTime`, whose rounding can
 * reach a whole second of nanoseconds, carried into the seconds by `addHrTimes`.
 */
export function hrTimeOf (epochMillis: number): HrTime {
  return addHrTimes(millisToHrTime(epochMillis), NO_TIME)
}

export class RecordedSpan implements ReadableSpan {
  name: string
  readonly kind: SpanKind
  readonly parentSpanContext: SpanContext | undefined
  readonly startTime: HrTime
  endTime: HrTime = [0, 0]
  duration: HrTime = [-1, -1]
  status: SpanStatus = UNSET
  readonly attributes: Attributes = {}
  readonly links = NO_LINKS
  readonly events = NO_EVENTS
  ended = false
  readonly resource: Resource
  readonly instrumentationScope: InstrumentationScope
  readonly droppedAttributesCount = 0
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0
  readonly #context: SpanContext
  readonly #processor: SpanProcessor
  /** `performance.now()` at the start, when the start was now: the end adds the monotonic time since. */
  readonly #startedAt: number | undefined

  /**
   * A sampled span: `spanId` its own, in `parent`'s trace (its trace id and state) or in the
   * trace `traceId` names when it has none. Times as the SDK's span keeps them: the start from
   * the wall clock (`Date.now()`, not `performance.timeOrigin` plus the monotonic clock, which
   * drifts from it over a long-running process's life), the end the start plus the monotonic
   * time since; given a start (`startTime`), the end is the wall clock's then.
   */
  constructor (sink: SpanSink, name: string, kind: SpanKind, parent: SpanContext | undefined, traceId: string, spanId: string, startTime?: HrTime) {
    this.name = name
    this.kind = kind
    this.parentSpanContext = parent
    if (startTime === undefined) {
      this.#startedAt = performance.now()
      this.startTime = hrTimeOf(Date.now())
    } else {
      this.#startedAt = undefined
      this.startTime = startTime
    }
    this.resource = sink.resource
    this.instrumentationScope = sink.scope
    this.#processor = sink.processor
    this.#context = { traceId: parent?.traceId ?? traceId, spanId, traceFlags: TraceFlags.SAMPLED, traceState: parent?.traceState }
  }

  spanContext (): SpanContext {
    return this.#context
  }

  /** A null or undefined value is dropped, as the SDK drops it. */
  setAttribute (key: string, value: AttributeValue | null | undefined): this {
    if (value != null && !this.ended) this.attributes[key] = value
    return this
  }

  setAttributes (attributes: Attributes): this {
    for (const key in attributes) this.setAttribute(key, attributes[key])
    return this
  }

  /** As the SDK's: UNSET changes nothing, and OK is final. */
  setStatus (status: SpanStatus): this {
    if (this.ended || status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this
    this.status = status.code === SpanStatusCode.ERROR && typeof status.message === 'string' ? { code: status.code, message: status.message } : { code: status.code }
    return this
  }

  updateName (name: string): this {
    if (!this.ended) this.name = name
    return this
  }

  end (): void {
    if (this.ended) return
    this.ended = true
    const end = this.#startedAt === undefined ? hrTimeOf(Date.now()) : addHrTimes(this.startTime, hrTimeOf(performance.now() - this.#startedAt))
    const duration = hrTimeDuration(this.startTime, end)
    // A start given as a time later than now (a clock step): the span lasts nothing, as the SDK's would.
    if (duration[0] < 0) {
      this.endTime = this.startTime
      this.duration = [0, 0]
    } else {
      this.endTime = end
      this.duration = duration
    }
    this.#processor.onEnd(this)
  }
}

