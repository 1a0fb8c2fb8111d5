/**
 * What the gateway knows of a streamed Chat Completions answer: `data:` lines without `event:`
 * lines, one `chat.completion.chunk` each, ended by `data: [DONE]`. With
 * `stream_options.include_usage` every chunk says `"usage":null` except one more before
 * `[DONE]`, whose `choices` is empty and whose `usage` counts the whole request.
 */
import { parseJson } from './responses-api.js'

/** The data of the event that ends a Chat Completions stream. */
export const CHAT_STREAM_DONE = '[DONE]'

/** A chunk's usage, and whether the chunk is the usage-only one `include_usage` adds. */
export interface ChunkUsage {
  usage: object
  /** `choices: []`: nothing but the usage, so nothing more is to be learned after it. */
  final: boolean
}

/** Quotes inside JSON strings are escaped, so this matches a real `usage` key whose value is an object. */
const USAGE_OBJECT = /"usage"\s*:\s*\{/

/**
 * The usage object of a `chat.completion.chunk`; undefined for a chunk with `"usage":null` or
 * none (every chunk but one), for `[DONE]` and for anything that is not a chunk. Only a chunk
 * with a usage object is parsed: usually one a stream.
 */
export function chunkUsage (data: string): ChunkUsage | undefined {
  if (!USAGE_OBJECT.test(data)) return undefined
  const chunk = parseJson(data) as { object?: unknown, choices?: unknown, usage?: unknown } | null | undefined
  if (chunk === null || typeof chunk !== 'object' || chunk.usage === null || typeof chunk.usage !== 'object') return undefined
  if (chunk.object !== undefined && chunk.object !== 'chat.completion.chunk') return undefined
  return { usage: chunk.usage, final: Array.isArray(chunk.choices) && chunk.choices.length === 0 }
}
