/**
 * Lineage tests' two halves: an upstream that answers every request with a new response id
 * (streamed or JSON, as the body asks), and a client that POSTs to /v1/responses on a brand-new
 * connection each time and reports which session the upstream was told.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { replyJson, replySse, responseStream, type MockUpstream, type RecordedRequest } from './mock-upstream.js'
import type { RunningGateway } from './gateway.js'

/**
 * Makes `upstream` answer each request with a new response id: as an SSE stream when the body
 * asks for `stream: true`, else as a JSON response object. Returns the ids, in answer order.
 */
export function answerWithNewResponses (upstream: MockUpstream): string[] {
  const answered: string[] = []
  upstream.handle((req, res, raw) => {
    const id = `resp_${answered.length + 1}_${Math.random().toString(36).slice(2, 10)}`
    answered.push(id)
    let streamed = false
    try {
      streamed = (JSON.parse(req.body.toString('utf8')) as { stream?: unknown }).stream === true
    } catch {
      // not JSON (text, gzip): answer with JSON
    }
    return streamed
      ? replySse([responseStream(id, 'Sure — here it is.')])(req, res, raw)
      : replyJson({ id, object: 'response', status: 'completed', output: [] })(req, res, raw)
  })
  return answered
}

export interface Exchange {
  status: number
  /** What the client got back. */
  body: string
  /** What the upstream received, or undefined when nothing reached it. */
  seen: RecordedRequest | undefined
  /** The session the upstream was told (`session-id`). */
  session: string | undefined
  /** How the gateway says it decided the session (`session_source` of its log line). */
  source: unknown
  /** The id of the response the upstream answered with. */
  responseId: string | undefined
}

export interface PostOptions {
  headers?: Record<string, string>
  /** Sent instead of `JSON.stringify(body)`; an async iterable goes chunked. */
  raw?: Buffer | string | AsyncIterable<Buffer>
}

/**
 * POSTs to /v1/responses on a brand-new connection (a fresh undici Agent), reads the whole
 * answer, and returns what the upstream saw and how the gateway logged it.
 */
export async function postResponse (gateway: RunningGateway, upstream: MockUpstream, answered: string[], body: unknown, options: PostOptions = {}): Promise<Exchange> {
  const requestsBefore = upstream.requests.length
  const logsBefore = requestLogs(gateway).length
  const answersBefore = answered.length
  const agent = new Agent({ connections: 1 })
  try {
    const { raw } = options
    const res = await request(`${gateway.baseURL}/responses`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...options.headers },
      body: isAsyncIterable(raw) ? Readable.from(raw) : raw ?? JSON.stringify(body)
    })
    const text = await res.body.text()
    // The exchange's log line is written as the relay ends (a 413 is answered before any relay).
    if (res.statusCode !== 413) await gateway.waitForLog((line) => line.msg === 'request' && requestLogs(gateway).length > logsBefore)
    const seen = upstream.requests.length > requestsBefore ? upstream.requests.at(-1) : undefined
    return {
      status: res.statusCode,
      body: text,
      seen,
      session: headerValue(seen?.headers, 'session-id'),
      source: requestLogs(gateway)[logsBefore]?.session_source,
      responseId: answered.length > answersBefore ? answered.at(-1) : undefined
    }
  } finally {
    await agent.close()
  }
}

export function headerValue (headers: IncomingHttpHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name]
  return typeof value === 'string' ? value : undefined
}

function requestLogs (gateway: RunningGateway): Array<Record<string, unknown>> {
  return gateway.logs.filter((line) => line.msg === 'request')
}

function isAsyncIterable (body: unknown): body is AsyncIterable<Buffer> {
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body
}
