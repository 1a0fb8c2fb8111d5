import type { ResponseTap } from '../relay/response-relay.js'
import { SseObserver } from './sse-observer.js'

/** What the gateway learns from a Responses API answer as it passes. */
export interface ResponseFacts {
  /** `response.id`, as soon as it is seen (`response.created`, or a JSON body's `id`). */
  onResponseId?: (id: string) => void
}

/** Largest non-streamed JSON body kept to read its `id`; larger ones pass unobserved. */
const MAX_JSON_BYTES = 8 * 1024 * 1024

/**
 * A relay tap that reads response ids from a 2xx Responses answer: from the SSE stream's
 * `response.created` (or `response.completed`) event, or from a JSON body's top-level `id`.
 * It never delays or alters a byte and stops looking once it has what it needs.
 */
export class ResponseObserver implements ResponseTap {
  readonly #facts: ResponseFacts
  #sse: SseObserver | undefined
  #json: Buffer[] | undefined
  #jsonBytes = 0

  constructor (facts: ResponseFacts) {
    this.#facts = facts
  }

  onResponseStart (status: number, headers: string[]): void {
    if (status < 200 || status >= 300) return
    // Compressed bodies pass unobserved: decoding them would cost more than lineage is worth.
    if (contentEncoding(headers) !== undefined) return
    const type = contentType(headers)
    if (type.startsWith('text/event-stream')) {
      this.#sse = new SseObserver({
        wants: (event) => event === 'response.created' || event === 'response.completed',
        onEvent: (_type, data) => this.#onEventData(data)
      })
    } else if (type.startsWith('application/json')) {
      this.#json = []
    }
  }

  onChunk (chunk: Buffer): void {
    if (this.#sse !== undefined) {
      this.#sse.push(chunk)
    } else if (this.#json !== undefined) {
      this.#jsonBytes += chunk.length
      if (this.#jsonBytes > MAX_JSON_BYTES) this.#json = undefined
      else this.#json.push(Buffer.from(chunk))
    }
  }

  onResponseEnd (): void {
    if (this.#json === undefined) return
    const body = this.#json
    this.#json = undefined
    const parsed = parseJson(Buffer.concat(body).toString('utf8')) as { id?: unknown, object?: unknown } | undefined
    if (typeof parsed?.id === 'string' && (parsed.object === undefined || parsed.object === 'response')) this.#learnId(parsed.id)
  }

  #onEventData (data: string): void {
    const event = parseJson(data) as { type?: unknown, response?: { id?: unknown } } | undefined
    if (event === undefined) return
    if ((event.type === 'response.created' || event.type === 'response.completed') && typeof event.response?.id === 'string') {
      this.#learnId(event.response.id)
      this.#sse?.stop() // the id is all lineage needs from this stream
    }
  }

  #learnId (id: string): void {
    try {
      this.#facts.onResponseId?.(id)
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
  const value = headerValue(headers, 'content-encoding')
  return value === undefined || value.toLowerCase() === 'identity' ? undefined : value
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
