/**
 * The gateway's own small tracing interface. The OpenTelemetry implementation behind it
 * (otel-tracer.ts) is loaded with a dynamic import only when an OTLP endpoint is configured:
 * with tracing off no @opentelemetry module is loaded at all, and the tracer is `undefined`
 * — the no-op is a single `?.` on the request path, not an object whose methods do nothing.
 */
import type { IncomingMessage } from 'node:http'
import type { TracingConfig } from '../config/tracing-env.js'
import type { ExchangeOutcome } from '../proxy/exchange.js'
import type { RelayOutcome } from '../relay/response-relay.js'
import type { Session } from '../session/resolve-session.js'
import type { TokenUsage } from '../session/session-usage.js'
import type { Logger } from './logger.js'
import type { Transport } from './metrics.js'

export interface ExchangeTracer {
  /** Starts the server span of a request; a client's `traceparent`/`tracestate` make it a child. */
  startExchange (req: IncomingMessage, transport: Transport, path: string): ExchangeSpan
  /** Exports what is still queued and stops; resolves within `timeoutMs` even if the collector does not answer. */
  shutdown (timeoutMs: number): Promise<void>
}

/** Where an upstream attempt goes, for its client span. */
export interface AttemptTarget {
  /** The upstream's name in config (`default` with `UPSTREAM_URL`). */
  upstream: string
  /** `http://host:port` */
  origin: string
  method: string
  /** The upstream path, without its query. */
  path: string
}

/** The server span of one exchange (an HTTP request, a WebSocket connection, or a refusal). */
export interface ExchangeSpan {
  /** Hex trace id, for the log line. */
  readonly traceId: string
  admitted (session: Session): void
  /**
   * Starts the client span of one upstream attempt, a child of this span. Each call is one
   * more attempt with a span of its own: a retry on another upstream starts another one.
   */
  startAttempt (target: AttemptTarget): AttemptSpan
  responseModel (model: string): void
  responseId (id: string): void
  usage (tokens: TokenUsage): void
  /** HTTP: a 2xx stream carried an error (its code) before any response: the call's span failed with it. */
  refusedInStream (code: string): void
  /**
   * WebSocket: the client sent a `response.create` whose first frame came at `startedAt`
   * (`performance.now()` time): a response span starts then, unless one is open.
   */
  clientMessage (startedAt: number): void
  /** WebSocket: an upstream event; a terminal one ends the open response span. */
  responseEvent (type: string | undefined): void
  /** Ends the span, its current attempt's span if still open, and an open response span; later calls are ignored. */
  end (outcome: ExchangeOutcome): void
}

/** The client span of one upstream attempt. */
export interface AttemptSpan {
  /** `traceparent` (and `tracestate`) naming this span, as flat `[name, value, …]` header pairs. */
  readonly traceHeaders: string[]
  /** The attempt's answer: its status, or how it failed. Later calls are ignored. */
  end (outcome: Pick<RelayOutcome, 'status' | 'endedBy' | 'failure' | 'ttfbMs'>): void
}

/** The tracer for `config`, or undefined when tracing is off (then nothing is imported). `logger` hears of failed exports. */
export async function startTracing (config: TracingConfig, logger: Logger): Promise<ExchangeTracer | undefined> {
  if (!config.enabled) return undefined
  const { createOtelTracer } = await import('./otel-tracer.js')
  return await createOtelTracer(config, { logger })
}
