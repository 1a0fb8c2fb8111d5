/**
 * A test-only upstream: a real HTTP server on loopback that records every request it
 * receives and answers with whatever the test's handler does (Responses-style SSE with
 * chosen chunking and pauses, JSON, gzip, resets, hangs).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { xorshift32 } from './random.js'

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
  /** Resolves when the gateway closes the request's connection or the response ends. */
  closed: Promise<void>
  /** True when the connection closed before the response was finished. */
  abortedByPeer: () => boolean
}

export type UpstreamHandler = (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>

export interface MockUpstream {
  /** `http://127.0.0.1:PORT` */
  origin: string
  /** `http://127.0.0.1:PORT/v1`, what the gateway's UPSTREAM_URL is set to. */
  url: string
  requests: RecordedRequest[]
  /** Resolves with the next request the upstream receives (body read). */
  nextRequest (): Promise<RecordedRequest>
  handle (handler: UpstreamHandler): void
  close (): Promise<void>
  server: Server
}

export async function startMockUpstream (handler: UpstreamHandler = replyJson({ ok: true })): Promise<MockUpstream> {
  const requests: RecordedRequest[] = []
  const waiters: Array<(req: RecordedRequest) => void> = []
  const sockets = new Set<Socket>()
  let current = handler

  const server = createServer((raw, res) => {
    const chunks: Buffer[] = []
    let aborted = false
    const closed = new Promise<void>((resolve) => {
      res.on('close', () => {
        aborted = !res.writableFinished
        resolve()
      })
    })
    raw.on('data', (chunk: Buffer) => chunks.push(chunk))
    raw.on('error', () => {})
    raw.on('end', () => {
      const recorded: RecordedRequest = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        headers: raw.headers,
        rawHeaders: raw.rawHeaders,
        body: Buffer.concat(chunks),
        closed,
        abortedByPeer: () => aborted
      }
      requests.push(recorded)
      waiters.shift()?.(recorded)
      Promise.resolve(current(recorded, res, raw)).catch((err: Error) => {
        res.destroy(err)
      })
    })
  })
  server.maxHeadersCount = 0 // sees every header the gateway sends, however many
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    url: `${origin}/v1`,
    requests,
    server,
    nextRequest: async () => await new Promise<RecordedRequest>((resolve) => waiters.push(resolve)),
    handle: (next) => { current = next },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Answers every request with the given JSON and status. */
/** Resolves with the first request `upstream` received, or receives, that matches `predicate`. */
export async function received (upstream: MockUpstream, predicate: (req: RecordedRequest) => boolean): Promise<RecordedRequest> {
  const seen = upstream.requests.find(predicate)
  if (seen !== undefined) return seen
  for (;;) {
    const next = await upstream.nextRequest()
    if (predicate(next)) return next
  }
}

export function replyJson (body: unknown, status = 200, headers: Record<string, string> = {}): UpstreamHandler {
  return (_req, res) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }
}

/** One Responses-API SSE event, framed as the API frames it. */
export function sseEvent (data: { type: string, [key: string]: unknown }): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`
}

/** A complete, realistic Responses stream for one short text answer. */
export function responseStream (responseId: string, text: string, usage = defaultUsage()): string {
  const response = { id: responseId, object: 'response', created_at: 1764000000, status: 'in_progress', model: 'gpt-test', output: [] as unknown[] }
  const itemId = `msg_${responseId}`
  const item = { id: itemId, type: 'message', status: 'in_progress', role: 'assistant', content: [] as unknown[] }
  const part = { type: 'output_text', text, annotations: [] }
  const done = { ...item, status: 'completed', content: [part] }
  return [
    sseEvent({ type: 'response.created', sequence_number: 0, response }),
    sseEvent({ type: 'response.in_progress', sequence_number: 1, response }),
    sseEvent({ type: 'response.output_item.added', sequence_number: 2, output_index: 0, item }),
    sseEvent({ type: 'response.content_part.added', sequence_number: 3, item_id: itemId, output_index: 0, content_index: 0, part: { ...part, text: '' } }),
    sseEvent({ type: 'response.output_text.delta', sequence_number: 4, item_id: itemId, output_index: 0, content_index: 0, delta: text }),
    sseEvent({ type: 'response.output_text.done', sequence_number: 5, item_id: itemId, output_index: 0, content_index: 0, text }),
    sseEvent({ type: 'response.content_part.done', sequence_number: 6, item_id: itemId, output_index: 0, content_index: 0, part }),
    sseEvent({ type: 'response.output_item.done', sequence_number: 7, output_index: 0, item: done }),
    sseEvent({ type: 'response.completed', sequence_number: 8, response: { ...response, status: 'completed', output: [done], usage } })
  ].join('')
}

export function defaultUsage (): Record<string, unknown> {
  return { input_tokens: 120, input_tokens_details: { cached_tokens: 100 }, output_tokens: 7, output_tokens_details: { reasoning_tokens: 3 }, total_tokens: 127 }
}

/** Writes an SSE stream in the given pieces, waiting for `between(i)` (if any) before piece i+1. */
export function replySse (pieces: Array<string | Buffer>, between?: (index: number) => Promise<void>): UpstreamHandler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
    for (let i = 0; i < pieces.length; i++) {
      if (res.destroyed) return
      res.write(pieces[i])
      if (between !== undefined && i < pieces.length - 1) await between(i)
    }
    res.end()
  }
}

/**
 * Starts an SSE answer with `first` and, once `reset()` is called (say, when the client has seen
 * `first`), destroys the connection: a stream that breaks mid-way and never ends cleanly.
 */
export function resetMidStream (first: string, headers: Record<string, string> = { 'content-type': 'text/event-stream; charset=utf-8' }): { handler: UpstreamHandler, reset: () => void } {
  let reset = (): void => {}
  const resetting = new Promise<void>((resolve) => { reset = resolve })
  return {
    handler: async (_req, res) => {
      res.writeHead(200, headers)
      res.write(first)
      await resetting
      res.socket?.destroy()
    },
    reset
  }
}

/** Splits bytes at random places (seeded), so multi-byte characters and event lines straddle chunks. */
export function randomChunks (bytes: Buffer, seed: number, maxChunk = 17): Buffer[] {
  const next = xorshift32(seed)
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length;) {
    const size = 1 + (next() % maxChunk)
    chunks.push(bytes.subarray(at, at + size))
    at += size
  }
  return chunks
}
