import type { ResponseTap } from '../relay/response-relay.js'
import { brotliDecompress, gunzip, inflate, type InputType, type ZlibOptions } from 'node:zlib'
import type { TokenUsage } from '../session/session-usage.js'
import { CHAT_STREAM_DONE, chunkUsage } from './chat-completions-api.js'
import { ByteTail } from './byte-tail.js'
import { FINAL_EVENTS, parseJson, streamErrorCode, tokenUsage } from './responses-api.js'
import { SseObserver } from './sse-observer.js'

/** Where what the gateway learns from a Responses API answer goes, as it passes. */
export interface ResponseFacts {
  /** `response.id`, as soon as it is seen (`response.created`, or a JSON body's `id`). */
  onResponseId (id: string): void
  /** `usage` of a finished response (`response.completed`/`incomplete`, a JSON body's, or a chat stream's usage chunk). */
  onUsage (usage: TokenUsage): void
  /** The usage will come after the body has ended: a compressed JSON body is being inflated. */
  holdUsage (): void
  /** The inflated body has been read (or failed to inflate): no more usage will come. */
  releaseUsage (): void
  /** True when the model is wanted too (tracing is on); reading it costs a search of response.created. */
  readonly traced?: boolean
  /** `response.model` of response.created (or a JSON body's or a chat chunk's `model`). */
  onResponseModel? (model: string): void
  /** A JSON answer's conversation id (a conversation's creation). */
  onConversationId? (id: string): void
  /** The upstream's answer has begun, with `status`: the client's (after any failover). */
  onAnswer? (status: number): void
  /**
   * A 2xx stream carried an error (its `code`) before any response began: the upstream refused
   * the call inside its answer, so the prompt was never processed (nor cached).
   */
  onRefusedInStream? (code: string): void
}

/** Which API answers: the Responses API (`/v1/responses`) or Chat Completions (`/v1/chat/completions`). */
export type ModelApi = 'responses' | 'chat'

const WATCHED_EVENTS = ['response.created', ...FINAL_EVENTS, 'error']
/** Chat Completions chunks have no `event:` line: untyped events are offered, and an `error` event (a refusal, see #chatRefused). */
const CHAT_CHUNK_EVENTS: readonly string[] = ['error']

type Inflate = (body: InputType, options: ZlibOptions, done: (err: Error | null, plain: Buffer) => void) => void
const INFLATE: Record<string, Inflate> = { gzip: gunzip, 'x-gzip': gunzip, deflate: inflate, br: brotliDecompress as Inflate }

/** Largest response.created / response.completed event read for its id and usage. */
const MAX_EVENT_BYTES = 16 * 1024 * 1024
/** Of a final event or a JSON body longer than its limit, the last bytes read for its usage (as a WebSocket's is read). */
const TAIL_BYTES = 64 * 1024
/**
 * Largest non-streamed JSON body kept whole to be parsed; of a longer one only its start (its
 * `id`, written first) and its end (TAIL_BYTES: its usage) are kept, and a compressed one passes unread.
 */
const MAX_JSON_BYTES = 8 * 1024 * 1024
const JSON_HEAD_BYTES = 64 * 1024
/** Largest Chat Completions chunk read; the one with the usage has no choices, so it is small. */
const MAX_CHUNK_BYTES = 1024 * 1024

/**
 * A relay tap that reads response ids from a 2xx Responses answer: from the SSE stream's
 * `response.created` (or `response.completed`) event, or from a JSON body's top-level `id`;
 * and usage from the final event, a JSON body, or a Chat Completions stream's usage chunk.
 * It never delays or alters a byte and stops looking once it has what it needs.
 */
export class ResponseObserver implements ResponseTap {
  readonly #facts: ResponseFacts
  #sse: SseObserver | undefined
  #json: Buffer[] | undefined
  #jsonBytes = 0
  /** A JSON body past MAX_JSON_BYTES: its start and, as it passes, its end. */
  #jsonHead: Buffer | undefined
  #jsonTail: ByteTail | undefined
  #knownId: string | undefined
  /** A `response.created` was seen (with an id or not, read whole or cut): the response had begun. */
  #responseBegun = false
  #encoding: string | undefined
  readonly #wantsModel: boolean
  /** Decided once, from the request's path: a Responses stream never pays for chat chunks. */
  readonly #chat: boolean
  /** A chat stream's latest usage, reported once: at its usage-only chunk, `[DONE]` or the end. */
  #chatUsage: object | undefined
  #chatModelKnown = false
  /** A chat stream sent a chunk that is no error: an error after it is no refusal. */
  #chatBegun = false

  constructor (facts: ResponseFacts, api: ModelApi = 'responses') {
    this.#facts = facts
    this.#wantsModel = facts.traced === true
    this.#chat = api === 'chat'
  }

  onResponseStart (status: number, headers: string[]): void {
    this.#facts.onAnswer?.(status)
    if (status < 200 || status >= 300) return
    const encoding = contentEncoding(headers)
    const type = contentType(headers)
    if (type.startsWith('text/event-stream')) {
      // A compressed stream passes unobserved: inflating every chunk would cost every byte.
      if (encoding !== undefined) return
      this.#sse = this.#chat
        ? new SseObserver({ types: CHAT_CHUNK_EVENTS, onEvent: (type, data) => this.#onChatChunk(type, data), maxEventBytes: MAX_CHUNK_BYTES })
        : new SseObserver({
          types: WATCHED_EVENTS,
          onEvent: (type, data, cut) => this.#onEventData(type, data, cut),
          // response.created and .completed repeat the instructions, tools and output; agents
          // with long ones reach megabytes. Only these two events are copied, once each; of a
          // longer final event (generated images are base64 in its output) only the end, where its usage is.
          maxEventBytes: MAX_EVENT_BYTES,
          tailBytes: TAIL_BYTES
        })
    } else if (type.startsWith('application/json')) {
      // SDKs send accept-encoding, so plain JSON answers often come compressed: a copy is
      // inflated off the byte path, once the client has the whole body.
      if (encoding !== undefined && !Object.hasOwn(INFLATE, encoding)) return
      this.#json = []
      this.#encoding = encoding
    }
  }

  onChunk (chunk: Buffer): void {
    if (this.#sse !== undefined) {
      this.#sse.push(chunk)
    } else if (this.#json !== undefined) {
      this.#jsonBytes += chunk.length
      if (this.#jsonBytes > MAX_JSON_BYTES) this.#passJsonLimit(this.#json, chunk)
      else this.#json.push(Buffer.from(chunk))
    } else {
      this.#jsonTail?.add(chunk)
    }
  }

  /** A JSON body past MAX_JSON_BYTES: from here only its start and its end are kept. */
  #passJsonLimit (pieces: Buffer[], chunk: Buffer): void {
    this.#json = undefined
    if (this.#encoding !== undefined) return // a compressed body cannot be read in parts
    pieces.push(chunk)
    this.#jsonHead = Buffer.concat(pieces, Math.min(JSON_HEAD_BYTES, this.#jsonBytes))
    this.#jsonTail = new ByteTail(TAIL_BYTES)
    this.#jsonTail.addLast(pieces)
  }

  onResponseEnd (): void {
    // A chat stream that ended without `[DONE]` still counts the usage it carried.
    if (this.#chatUsage !== undefined) this.#reportChatUsage()
    if (this.#jsonTail !== undefined) {
      this.#onLongJsonBody(this.#jsonHead!, this.#jsonTail.bytes())
      this.#jsonTail = undefined
      this.#jsonHead = undefined
      return
    }
    if (this.#json === undefined) return
    const body = Buffer.concat(this.#json)
    this.#json = undefined
    const inflate = this.#encoding === undefined ? undefined : INFLATE[this.#encoding]
    if (inflate === undefined) {
      this.#onJsonBody(body)
      return
    }
    this.#facts.holdUsage()
    inflate(body, { maxOutputLength: MAX_JSON_BYTES * 4 }, (err, plain) => {
      if (err === null) this.#onJsonBody(plain)
      try {
        this.#facts.releaseUsage()
      } catch {
        // An observer must never break the relay.
      }
    })
  }

  #onJsonBody (body: Buffer): void {
    const parsed = parseJson(body.toString('utf8')) as { id?: unknown, object?: unknown, model?: unknown, usage?: unknown } | undefined
    if (parsed?.object === 'conversation') {
      if (typeof parsed.id === 'string') this.#learnConversation(parsed.id)
      return
    }
    if (parsed === undefined || (parsed.object !== undefined && parsed.object !== 'response' && parsed.object !== 'chat.completion')) return
    if (typeof parsed.id === 'string' && parsed.object !== 'chat.completion') this.#learnId(parsed.id)
    if (this.#wantsModel && typeof parsed.model === 'string') this.#learnModel(parsed.model)
    this.#learnUsage(parsed.usage)
  }

  /**
   * A Responses JSON body too long to keep (generated images are base64 in its output): its id
   * from its start, where the API writes it first, and its usage from its end, where it comes
   * after the output. A body written otherwise (or a chat completion) passes unread.
   */
  #onLongJsonBody (head: Buffer, tail: Buffer): void {
    const start = head.toString('utf8')
    const id = LEADING_JSON_ID.exec(start)?.[1]
    if (id === undefined) return
    this.#learnId(id)
    if (this.#wantsModel) this.#learnModel(responseModel(start))
    this.#learnUsage(trailingUsage(tail.toString('utf8')))
  }

  #onEventData (type: string | undefined, data: string, cut: boolean | undefined): void {
    if (type === 'error') return this.#onStreamError(cut === true ? undefined : parseJson(data))
    if (type === 'response.created') this.#responseBegun = true
    if (cut === true) {
      // Only the end of an event too long to copy: a final event's usage is there.
      if (type !== undefined && FINAL_EVENTS.has(type)) this.#finalUsage(trailingUsage(data))
      return
    }
    // The usual shapes are read without parsing the whole event, which repeats the request's
    // instructions and tools (and, at the end, the whole output): the id sits at the start of
    // response.created, the usage near the end of the final event. Anything else is parsed.
    if (type === 'response.created') {
      const id = leadingResponseId(data)
      if (id !== undefined) {
        if (this.#wantsModel) this.#learnModel(responseModel(data))
        return this.#learnId(id)
      }
    } else if (type !== undefined && FINAL_EVENTS.has(type) && this.#knownId !== undefined) {
      const usage = trailingUsage(data)
      if (usage !== undefined) return this.#finalUsage(usage)
    }
    const event = parseJson(data) as { type?: unknown, response?: { id?: unknown, model?: unknown, usage?: unknown } } | undefined
    if (event === undefined || typeof event.type !== 'string') return
    if (event.type === 'error') return this.#onStreamError(event)
    if (event.type === 'response.created') {
      this.#responseBegun = true
      if (this.#wantsModel && typeof event.response?.model === 'string') this.#learnModel(event.response.model)
      if (typeof event.response?.id === 'string') this.#learnId(event.response.id)
    } else if (FINAL_EVENTS.has(event.type)) {
      if (typeof event.response?.id === 'string') this.#learnId(event.response.id)
      this.#finalUsage(event.response?.usage)
    }
  }

  /**
   * A Responses stream's `error` event. Before `response.created` the upstream refused the call
   * (a rate limit, a bad request) with a 200 already sent; after it, the response failed while
   * under way, its prompt processed: no refusal.
   */
  #onStreamError (event: unknown): void {
    if (this.#responseBegun || this.#knownId !== undefined) return
    try {
      this.#facts.onRefusedInStream?.(streamErrorCode(event))
    } catch {
      // An observer must never break the relay.
    }
  }

  /** A final event's usage (undefined when it has none): nothing more to learn from this stream. */
  #finalUsage (usage: unknown): void {
    this.#learnUsage(usage)
    this.#sse?.stop()
  }

  /**
   * One Chat Completions chunk. Its `chatcmpl-` id is not learned: it is no Responses id, so
   * no request can continue it (`previous_response_id`), as with a non-streamed chat answer.
   * Usage is a running total in every server that repeats it (vLLM's continuous stats): the
   * latest counts, once.
   */
  #onChatChunk (type: string | undefined, data: string): void {
    if (!this.#chatBegun && this.#chatRefused(type, data)) return
    if (type !== undefined) return // an `error` event after the stream began: nothing to learn
    if (this.#wantsModel && !this.#chatModelKnown) {
      const model = responseModel(data)
      this.#chatModelKnown = model !== undefined
      this.#learnModel(model)
    }
    if (data === CHAT_STREAM_DONE) {
      this.#reportChatUsage()
      return
    }
    const found = chunkUsage(data)
    if (found === undefined) return
    this.#chatUsage = found.usage
    if (found.final) this.#reportChatUsage()
  }

  /**
   * A chat stream's first chunks: an `error` event, or a chunk that is an error (`{"error":{…}}`
   * as OpenAI and vLLM write one in a stream already answered 200, or an object `"error"`),
   * before any other is the upstream's refusal: the stream is not read further.
   */
  #chatRefused (type: string | undefined, data: string): boolean {
    const chunk = type === 'error' || data.includes('"error"') ? (parseJson(data) as { error?: unknown, object?: unknown, choices?: unknown } | undefined) : undefined
    const isError = type === 'error' || (chunk !== undefined && chunk.choices === undefined && ((chunk.error !== undefined && chunk.error !== null) || chunk.object === 'error'))
    if (!isError) {
      this.#chatBegun = true
      return false
    }
    this.#onStreamError(chunk)
    this.#sse?.stop()
    return true
  }

  #reportChatUsage (): void {
    const usage = this.#chatUsage
    this.#chatUsage = undefined
    this.#sse?.stop() // nothing more to learn from this stream
    if (usage !== undefined) this.#learnUsage(usage)
  }

  #learnId (id: string): void {
    if (this.#knownId === id) return
    this.#knownId = id
    try {
      this.#facts.onResponseId(id)
    } catch {
      // An observer must never break the relay.
    }
  }

  #learnConversation (id: string): void {
    try {
      this.#facts.onConversationId?.(id)
    } catch {
      // An observer must never break the relay.
    }
  }

  #learnModel (model: string | undefined): void {
    if (model === undefined) return
    try {
      this.#facts.onResponseModel?.(model)
    } catch {
      // An observer must never break the relay.
    }
  }

  #learnUsage (usage: unknown): void {
    const tokens = tokenUsage(usage)
    if (tokens === undefined) return
    try {
      this.#facts.onUsage(tokens)
    } catch {
      // An observer must never break the relay.
    }
  }
}

function headerValue (headers: string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === lowerName.length && headers[i]!.toLowerCase() === lowerName) return headers[i + 1]
  }
  return undefined
}

function contentType (headers: string[]): string {
  return (headerValue(headers, 'content-type') ?? '').toLowerCase()
}

function contentEncoding (headers: string[]): string | undefined {
  const value = headerValue(headers, 'content-encoding')?.trim().toLowerCase()
  return value === undefined || value === '' || value === 'identity' ? undefined : value
}

const LEADING_RESPONSE_ID = /^\{"type":"response\.created"(?:,"sequence_number":\d+)?,"response":\{"id":"([^"\\]+)"/

/** `response.id` of a response.created event as the API writes it; undefined for any other shape. */
export function leadingResponseId (data: string): string | undefined {
  return LEADING_RESPONSE_ID.exec(data)?.[1]
}

/** A Responses JSON body's start as the API writes it, pretty-printed or not: `id`, then `object`. */
const LEADING_JSON_ID = /^\s*\{\s*"id"\s*:\s*"([^"\\]+)"\s*,\s*"object"\s*:\s*"response"/

const MODEL = /"model"\s*:\s*"([^"\\]{1,200})"/

/**
 * `response.model` of a response.created event as the API writes it: the first `"model"` key
 * whose value is a plain string. Keys inside string values are escaped (`\"model\"`), so the
 * instructions cannot fake one; the response's own key comes before its tools and output.
 */
export function responseModel (data: string): string | undefined {
  return MODEL.exec(data)?.[1]
}

/** The usage object exactly as the Responses API writes it; any other shape is parsed as JSON. */
const USUAL_USAGE = /^\{"input_tokens":(\d{1,15}),"input_tokens_details":\{"cached_tokens":(\d{1,15})\},"output_tokens":(\d{1,15}),"output_tokens_details":\{"reasoning_tokens":(\d{1,15})\},"total_tokens":\d{1,15}\}$/

/**
 * The `usage` object of a final event (or of a JSON body's end), found from its end: the last
 * `"usage"` key whose value is an object (spaces around the colon allowed: the API
 * pretty-prints JSON bodies), cut out by brace matching and parsed alone. Undefined unless it
 * has token counts.
 */
export function trailingUsage (data: string): unknown {
  const start = lastUsageObject(data)
  if (start === -1) return undefined
  let depth = 0
  let inString = false
  for (let i = start; i < data.length; i++) {
    const c = data.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x7b) {
      depth++
    } else if (c === 0x7d && --depth === 0) {
      const text = data.slice(start, i + 1)
      const usual = USUAL_USAGE.exec(text)
      if (usual !== null) return { input_tokens: Number(usual[1]), input_tokens_details: { cached_tokens: Number(usual[2]) }, output_tokens: Number(usual[3]), output_tokens_details: { reasoning_tokens: Number(usual[4]) } }
      const usage = parseJson(text) as { input_tokens?: unknown } | undefined
      return typeof usage?.input_tokens === 'number' ? usage : undefined
    }
  }
  return undefined
}

/** Where the value of the last `"usage"` key whose value is an object starts (its `{`); -1 when none. */
function lastUsageObject (data: string): number {
  for (let key = data.lastIndexOf('"usage"'); key !== -1; key = key === 0 ? -1 : data.lastIndexOf('"usage"', key - 1)) {
    let i = skipSpaces(data, key + '"usage"'.length)
    if (data.charCodeAt(i) !== 0x3a) continue
    i = skipSpaces(data, i + 1)
    if (data.charCodeAt(i) === 0x7b) return i
  }
  return -1
}

function skipSpaces (text: string, i: number): number {
  for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++i));
  return i
}
