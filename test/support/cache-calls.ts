/**
 * Model calls whose usage the test chooses: the request carries it in `metadata.test_usage`
 * (`[input, cached]`), and the mock upstream answers with exactly that usage, over HTTP or as
 * the response to a WebSocket's `response.create`.
 */
import { Readable } from 'node:stream'
import { request } from 'undici'
import type { CallView } from '../../src/session/call-record.js'
import { responseStream, type UpstreamHandler } from './mock-upstream.js'
import { responseEvents, type UpstreamWebSocket } from './websocket-upstream.js'
import type { WsSocket } from './ws.js'

export const TOOLS = [{ type: 'function', name: 'shell', description: 'run a command', parameters: { type: 'object', properties: { cmd: { type: 'string' } } } }]
export const OTHER_TOOLS = [...TOOLS, { type: 'web_search' }]

let responses = 0

interface ChosenUsage { type?: unknown, metadata?: { test_usage?: [number, number] } }

function chosenUsage (body: ChosenUsage): Record<string, unknown> {
  const [input, cached] = body.metadata?.test_usage ?? [0, 0]
  return { input_tokens: input, input_tokens_details: { cached_tokens: cached }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: input + 5 }
}

/** Answers a Responses call with a stream whose usage is the request's `metadata.test_usage`. */
export const answerWithChosenUsage: UpstreamHandler = (req, res) => {
  const body = JSON.parse(req.body.toString('utf8')) as ChosenUsage
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
  res.end(responseStream(`resp_cache_${++responses}`, 'ok', chosenUsage(body)))
}

/** Answers each `response.create` on an upstream WebSocket with a whole response of the usage it chose. */
export function answerCreatesWithChosenUsage (upstream: UpstreamWebSocket): void {
  upstream.ws.on('message', (data, isBinary) => {
    if (isBinary) return
    const message = JSON.parse(data.toString('utf8')) as ChosenUsage
    if (message.type !== 'response.create') return
    for (const event of responseEvents(`resp_ws_cache_${++responses}`, 'ok', chosenUsage(message))) upstream.ws.send(event)
  })
}

export interface CallOptions {
  session?: string
  tools?: unknown[]
  instructions?: string
  model?: string
  /** A Responses call's `reasoning` (none when not given). */
  reasoning?: Record<string, unknown>
  usage: [number, number]
  /** The `input`: a history, or a string; by default one short user message, a new one each call. */
  input?: unknown[] | string
  /** A `previous_response_id` (none when not given). */
  previousResponseId?: string
  /** How the body goes: with content-length (default) or chunked. */
  chunked?: boolean
}

/** The body of a model call with the given prefix and chosen usage. */
export function callBody ({ tools = TOOLS, instructions = 'You are terse.', model = 'gpt-5', reasoning, usage, input, previousResponseId }: CallOptions): string {
  input ??= [{ role: 'user', content: `question ${++responses}` }]
  return JSON.stringify({ model, instructions, tools, reasoning, previous_response_id: previousResponseId, input, stream: true, metadata: { test_usage: usage } })
}

/** Text of `bytes` bytes beginning with `label`. */
export function prose (label: string, bytes: number): string {
  return `${label}: ${'the quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(bytes / 45))}`.slice(0, bytes)
}

/** A user turn, or an answer, of `bytes` bytes of text (a test gives turns different sizes, as real ones have). */
export const userTurn = (label: string, bytes: number): Record<string, unknown> => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text: prose(label, bytes) }] })
export const answerTurn = (label: string, bytes: number): Record<string, unknown> => ({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: prose(label, bytes) }] })

/** The usage of a call whose prompt is what its body holds at 4 bytes a token, as English text is, none of it cached. */
export function usageAt4BytesPerToken (options: Omit<CallOptions, 'usage'>): [number, number] {
  return [Math.ceil(callBody({ ...options, usage: [0, 0] }).length / 4), 0]
}

/** The `response.create` a WebSocket client sends for the same call: `type` first (as codex writes it), then the body's fields. */
export function createMessage (options: CallOptions): string {
  return JSON.stringify({ type: 'response.create', ...JSON.parse(callBody(options)) as Record<string, unknown> })
}

/** One model call over an open WebSocket: a `response.create`, then its events up to response.completed. */
export async function webSocketCall (ws: WsSocket, options: CallOptions): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onMessage = (data: Buffer): void => {
      if ((JSON.parse(data.toString('utf8')) as { type?: string }).type !== 'response.completed') return
      ws.off('message', onMessage)
      resolve()
    }
    ws.on('message', onMessage)
    ws.send(createMessage(options), {}, (err) => { if (err !== undefined && err !== null) reject(err) })
  })
}

/** One streamed model call through the gateway at `baseURL`, read to its end. */
export async function modelCall (baseURL: string, options: CallOptions): Promise<void> {
  const text = callBody(options)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.session !== undefined) headers['session-id'] = options.session
  const body = options.chunked === true ? Readable.from([Buffer.from(text.slice(0, 40)), Buffer.from(text.slice(40))]) : text
  const res = await request(`${baseURL}/responses`, { method: 'POST', body, headers })
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${await res.body.text()}`)
  await res.body.dump()
}

/** A model call whose usage is usageAt4BytesPerToken's. */
export async function sizedModelCall (baseURL: string, options: Omit<CallOptions, 'usage'>): Promise<void> {
  await modelCall(baseURL, { ...options, usage: usageAt4BytesPerToken(options) })
}

/** GET /gateway/sessions/{id}/requests: status and records (newest first). */
export async function callRecords (origin: string, session: string, headers: Record<string, string> = {}): Promise<{ status: number, data: CallView[] }> {
  const res = await request(`${origin}/gateway/sessions/${encodeURIComponent(session)}/requests`, { headers })
  const body = await res.body.json() as { data?: CallView[] }
  return { status: res.statusCode, data: body.data ?? [] }
}

/** Polls the records until `count` are there (Redis writes land after the call ends). */
export async function recordsUntil (origin: string, session: string, count: number): Promise<CallView[]> {
  for (;;) {
    const { data } = await callRecords(origin, session)
    if (data.length >= count) return data
    await new Promise((resolve) => setImmediate(resolve))
  }
}
