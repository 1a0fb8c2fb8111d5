/**
 * What the gateway knows of the Responses API's shapes: which events end a response, and how
 * its usage objects read. Shared by the SSE observer and the WebSocket event reader.
 */
import type { TokenUsage } from '../session/session-usage.js'

/** Stream events that carry a finished response (its id and usage). */
export const FINAL_EVENTS: ReadonlySet<string> = new Set(['response.completed', 'response.incomplete', 'response.failed'])

/** Events after which the response they belong to is over: the final ones, and an `error`. */
export const TERMINAL_EVENTS: ReadonlySet<string> = new Set([...FINAL_EVENTS, 'error'])

/** Reads Responses (`input_tokens`…) and Chat Completions (`prompt_tokens`…, DeepSeek's `prompt_cache_hit_tokens`) usage shapes. */
export function tokenUsage (usage: unknown): TokenUsage | undefined {
  if (usage === null || typeof usage !== 'object') return undefined
  const u = usage as Record<string, unknown>
  const details = (key: string): Record<string, unknown> => (u[key] !== null && typeof u[key] === 'object' ? u[key] : {}) as Record<string, unknown>
  const count = (value: unknown): number => typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0
  const input = count(u.input_tokens ?? u.prompt_tokens)
  const output = count(u.output_tokens ?? u.completion_tokens)
  // DeepSeek's Chat Completions report cache reads as prompt_cache_hit_tokens (of prompt_tokens).
  const cached = count(details('input_tokens_details').cached_tokens ?? details('prompt_tokens_details').cached_tokens ?? u.prompt_cache_hit_tokens)
  const reasoning = count(details('output_tokens_details').reasoning_tokens ?? details('completion_tokens_details').reasoning_tokens)
  return { input, cached, output, reasoning }
}

/** JSON.parse, with undefined for text that is not JSON. */
export function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** An error code as APIs write them (`rate_limit_exceeded`, `server_error`): anything else is not kept. */
const ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * The code of an error an upstream sent inside a 2xx answer: a Responses stream's `error`
 * event (`{"type":"error","code":…}`, or its code under `error`), or a Chat Completions
 * stream's `{"error":{…}}` (or `{"object":"error",…}`) chunk. Only the code, never the message (it may quote the request);
 * `error` when there is no code of that shape.
 */
export function streamErrorCode (event: unknown): string {
  if (event === null || typeof event !== 'object') return 'error'
  const { code, error, object, type } = event as { code?: unknown, error?: unknown, object?: unknown, type?: unknown }
  const nested = error !== null && typeof error === 'object' ? (error as { code?: unknown, type?: unknown }) : undefined
  // An error object of its own (`{"object":"error",…}`, vLLM's older chunks): its type says what it is.
  for (const candidate of [code, nested?.code, nested?.type, object === 'error' ? type : undefined]) {
    if (typeof candidate === 'string' && ERROR_CODE.test(candidate)) return candidate
  }
  return 'error'
}
