/**
 * What a span says about an exchange, as plain attribute maps: the OpenTelemetry HTTP and
 * GenAI semantic conventions plus the gateway's own `session_gateway.*`. Pure functions, so
 * what is recorded (and what never is: no prompt, no completion, no key or header value)
 * is checked without a collector. The GenAI names are still "incubating" upstream, whose
 * package asks users to copy them rather than import them; so they are spelled out here.
 */
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_URL_PATH
} from '@opentelemetry/semantic-conventions'
import type { ExchangeOutcome } from '../proxy/exchange.js'
import type { Session } from '../session/resolve-session.js'
import type { TokenUsage } from '../session/session-usage.js'
import type { Transport } from './metrics.js'
import { routeLabel } from './route-label.js'
import type { AttemptTarget } from './tracing.js'

export type SpanAttributes = Record<string, string | number | boolean>

/** The GenAI operation of a model call; undefined for other requests (models list, files, …). */
export function genAiOperation (method: string, path: string, transport: Transport): 'chat' | undefined {
  if (path === '/v1/responses') return method === 'POST' || transport === 'websocket' ? 'chat' : undefined
  return method === 'POST' && path === '/v1/chat/completions' ? 'chat' : undefined
}

/** `{operation} {model}` once the model is known, else `{method} {route}`. */
export function spanName (operation: string | undefined, model: string | undefined, method: string, path: string): string {
  if (operation !== undefined && model !== undefined) return `${operation} ${model}`
  return `${method} ${routeLabel(path)}`
}

/**
 * What the server span knows of a request as it arrives: the HTTP facts. The GenAI facts
 * (operation, model, response id, usage) go on the client span of the attempt that made the
 * call, as the GenAI conventions place them on the inference span: a backend that sums
 * `gen_ai.usage.*` over a trace's spans (Langfuse, Datadog LLM Observability…) then counts a
 * call's tokens once. Every attribute is serialised into every export (the exporter's main
 * cost), so none repeats another: the route is in the span's name.
 */
export function requestAttributes (method: string, path: string): SpanAttributes {
  return { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: path }
}

export function genAiAttributes (operation: string): SpanAttributes {
  return { 'gen_ai.operation.name': operation, 'gen_ai.provider.name': 'openai', 'gen_ai.system': 'openai' }
}

/** The server span's session: who the exchange belongs to and how the gateway decided it. */
export function sessionAttributes (session: Session): SpanAttributes {
  return { 'session.id': session.id, 'session_gateway.session_source': session.source }
}

/** Host and port of each upstream origin seen, parsed once rather than per attempt. */
const servers = new Map<string, { address: string, port: number }>()

function serverOf (origin: string): { address: string, port: number } {
  let server = servers.get(origin)
  if (server === undefined) {
    const url = new URL(origin)
    server = { address: url.hostname, port: Number(url.port !== '' ? url.port : url.protocol === 'https:' ? 443 : 80) }
    servers.set(origin, server)
  }
  return server
}

/**
 * An upstream attempt's target (its host, never its credentials or query) and, for a model
 * call, the GenAI operation and its conversation: the session id.
 */
export function attemptAttributes (target: AttemptTarget, operation: string | undefined, sessionId: string | undefined): SpanAttributes {
  const server = serverOf(target.origin)
  const attributes: SpanAttributes = {
    [ATTR_HTTP_REQUEST_METHOD]: target.method,
    [ATTR_SERVER_ADDRESS]: server.address,
    [ATTR_SERVER_PORT]: server.port,
    [ATTR_URL_PATH]: target.path,
    'session_gateway.upstream': target.upstream
  }
  if (operation !== undefined) Object.assign(attributes, genAiAttributes(operation))
  if (operation !== undefined && sessionId !== undefined) attributes['gen_ai.conversation.id'] = sessionId
  return attributes
}

/** Token counts under GenAI names; `cached` is the part of the input read from the provider's cache. */
export function usageAttributes (tokens: TokenUsage): SpanAttributes {
  return {
    'gen_ai.usage.input_tokens': tokens.input,
    'gen_ai.usage.output_tokens': tokens.output,
    'gen_ai.usage.cache_read.input_tokens': tokens.cached
  }
}

export function modelAttributes (model: string): SpanAttributes {
  return { 'gen_ai.request.model': model, 'gen_ai.response.model': model }
}

type Ending = Pick<ExchangeOutcome, 'status' | 'endedBy' | 'failure' | 'ttfbMs' | 'refusedWith' | 'stoppedWith'>

/**
 * What went wrong, if anything: a refusal's error code (`invalid_api_key`), the gateway's own
 * that stopped a request gone upstream (`request_timeout`), an upstream failure's code
 * (`ECONNREFUSED`), `client_aborted` when the client left first, or the status
 * of a 5xx. Client spans (`asClient`) also count an upstream 4xx, as HTTP client spans do.
 */
export function errorType (outcome: Ending, asClient = false): string | undefined {
  if (outcome.refusedWith !== undefined) return outcome.refusedWith
  if (outcome.stoppedWith !== undefined) return outcome.stoppedWith
  if (outcome.failure !== undefined) return outcome.failure.code
  if (outcome.endedBy === 'client') return 'client_aborted'
  if (outcome.status >= 500 || (asClient && outcome.status >= 400)) return String(outcome.status)
  return undefined
}

/**
 * Whether the span's status is ERROR: 5xx, upstream failures and client aborts. A refusal
 * with a 4xx keeps its `error.type` but not an ERROR status: HTTP server spans leave the
 * client's mistakes unset.
 */
export function isError (outcome: Ending, asClient = false): boolean {
  if (outcome.status >= 500 || outcome.failure !== undefined || outcome.endedBy === 'client') return true
  return asClient && outcome.status >= 400
}

/** How it ended: status, who ended it, the time to the upstream's first byte, and the error. */
export function outcomeAttributes (outcome: Ending, asClient = false): SpanAttributes {
  const attributes: SpanAttributes = { 'session_gateway.ended_by': outcome.endedBy }
  if (outcome.status > 0) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = outcome.status
  if (outcome.ttfbMs >= 0) attributes['session_gateway.ttfb_ms'] = Math.round(outcome.ttfbMs * 10) / 10
  const error = errorType(outcome, asClient)
  if (error !== undefined) attributes[ATTR_ERROR_TYPE] = error
  return attributes
}
