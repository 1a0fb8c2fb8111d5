/**
 * Reads the Responses events an upstream sends over a WebSocket (one JSON event per text
 * message, the same objects as the SSE stream's `data:` lines) for what the gateway learns
 * from them: each response's id (lineage), its token usage, and whether a response is under
 * way (so shutdown can close an idle socket without cutting an answer short).
 *
 * Most events are deltas whose type is their first key; those are told apart by a look at
 * their first bytes and never parsed.
 */
import type { TokenUsage } from '../session/session-usage.js'
import { FINAL_EVENTS, parseJson, tokenUsage, TERMINAL_EVENTS } from '../observe/responses-api.js'
import { trailingUsage } from '../observe/response-observer.js'


export interface ResponseEventListener {
  /** Every event, by type; undefined when a message could not be read (not JSON, or cut short). */
  onEvent: (type: string | undefined) => void
  onResponseId: (id: string) => void
  /**
   * A response is over: its usage, read from its final event (`response.completed`,
   * `.incomplete` or `.failed`, as on HTTP), or undefined when it ended without any (an
   * `error`, a final event without usage, or one that could not be read). Each is a request of
   * the session's, as an HTTP call that failed counts with no tokens.
   */
  onResponseDone: (usage: TokenUsage | undefined) => void
  /** `response.model` of each response.created; given only when tracing wants it. */
  onResponseModel?: ((model: string) => void) | undefined
}

const TYPE_FIRST = /^\s*\{\s*"type"\s*:\s*"([^"\\]{1,100})"/
const HEAD_BYTES = 160

export class ResponseEventReader {
  readonly #listener: ResponseEventListener
  /** The id of the response under way is still to be learned (its response.created was not read). */
  #idPending = true
  /** The last event was a final one: an `error` right after it ends no response of its own. */
  #afterFinal = false

  constructor (listener: ResponseEventListener) {
    this.#listener = listener
  }

  /** `text`: the message, or its start when it was cut (`complete` false), and then `tail`, its end. */
  read (text: Buffer, complete: boolean, tail?: Buffer): void {
    const typeFirst = TYPE_FIRST.exec(text.toString('latin1', 0, Math.min(text.length, HEAD_BYTES)))?.[1]
    let type = typeFirst
    let usage: TokenUsage | undefined
    if (typeFirst === undefined || this.#wantsBody(typeFirst)) {
      const event = complete ? parseEvent(text) : undefined
      if (typeof event?.type === 'string') type = event.type
      if (event !== undefined && type !== undefined) usage = this.#learn(type, event)
      else if (!complete && tail !== undefined) usage = usageFromTail(typeFirst, tail)
    }
    if (type !== undefined && TERMINAL_EVENTS.has(type)) this.#responseDone(type, usage)
    else this.#afterFinal = false
    this.#listener.onEvent(type)
  }

  #responseDone (type: string, usage: TokenUsage | undefined): void {
    this.#idPending = true
    const final = FINAL_EVENTS.has(type)
    if (final || !this.#afterFinal) this.#listener.onResponseDone(usage)
    this.#afterFinal = final
  }

  #wantsBody (type: string): boolean {
    return type === 'response.created' || FINAL_EVENTS.has(type)
  }

  /** Tells the id and model a readable event carries; returns a final event's usage. */
  #learn (type: string, event: ParsedEvent): TokenUsage | undefined {
    const response = event.response
    if (response === null || typeof response !== 'object') return undefined
    if (type === 'response.created' && typeof response.model === 'string') this.#listener.onResponseModel?.(response.model)
    if (typeof response.id === 'string' && (type === 'response.created' || this.#idPending)) {
      this.#idPending = false
      this.#listener.onResponseId(response.id)
    }
    return FINAL_EVENTS.has(type) ? tokenUsage(response.usage) : undefined
  }
}

/**
 * A final event too long to keep whole (it repeats the request and carries the whole output):
 * its usage is read from its end, as the SSE path reads it (trailingUsage).
 */
function usageFromTail (type: string | undefined, tail: Buffer): TokenUsage | undefined {
  if (type === undefined || !FINAL_EVENTS.has(type)) return undefined
  return tokenUsage(trailingUsage(tail.toString('utf8')))
}

interface ParsedEvent {
  type?: unknown
  response?: { id?: unknown, model?: unknown, usage?: unknown } | null
}

function parseEvent (text: Buffer): ParsedEvent | undefined {
  const value = parseJson(text.toString('utf8'))
  return value !== null && typeof value === 'object' ? value as ParsedEvent : undefined
}
