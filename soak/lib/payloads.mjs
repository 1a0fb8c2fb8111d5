/**
 * What the soak's upstream answers, generated from a small spec that travels in the request
 * (`metadata.soak`). The upstream and the client both call these functions, so the client knows
 * the exact bytes to expect without the upstream telling it; the upstream also sends their
 * SHA-256 in `x-soak-sha256`, so a mismatch says which side disagrees.
 *
 * Text carries multi-byte UTF-8 (accents, CJK, emoji) and the upstream splits its writes at
 * arbitrary byte offsets, so a relay that decodes, re-frames or re-chunks text is caught.
 */
import { createHash } from 'node:crypto'

const MODEL = 'gpt-soak'
const WORDS = ['the', 'gateway', 'relays', 'every', 'byte', 'naïve', 'café', 'Grüße', '日本語', 'テキスト', '🙂', '🚀', 'ok', 'ünïcödé', 'stream', '—', 'λ', 'data:', 'event:', '\\n', '"quoted"']

/** A small seeded generator (mulberry32): the same seed gives the same sequence in both processes. */
export function random (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [min, max]. */
export function between (rand, min, max) {
  return min + Math.floor(rand() * (max - min + 1))
}

export function sha256 (buffer) {
  return createHash('sha256').update(buffer).digest('hex')
}

export function responseId (spec) {
  return `resp_soak_${spec.id}`
}

function text (rand, words) {
  const out = []
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)])
  return out.join(' ')
}

function sseEvent (type, data) {
  return Buffer.from(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`, 'utf8')
}

function usageOf (events) {
  return { input_tokens: 20 + events, input_tokens_details: { cached_tokens: events }, output_tokens: events, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 20 + 2 * events }
}

/**
 * The Responses events of one streamed answer, each as its own object: `response.created`,
 * `spec.events` text deltas (`spec.words` words each, default 1–8), `response.completed`.
 */
function responseEvents (spec) {
  const rand = random(spec.seed)
  const id = responseId(spec)
  const itemId = `msg_soak_${spec.id}`
  const events = [{ type: 'response.created', sequence_number: 0, response: { id, object: 'response', status: 'in_progress', model: MODEL, output: [] } }]
  for (let i = 1; i <= spec.events; i++) {
    const words = spec.words ?? between(rand, 1, 8)
    events.push({ type: 'response.output_text.delta', sequence_number: i, item_id: itemId, output_index: 0, content_index: 0, delta: text(rand, words) })
  }
  events.push({ type: 'response.completed', sequence_number: spec.events + 1, response: { id, object: 'response', status: 'completed', model: MODEL, usage: usageOf(spec.events) } })
  return events
}

/** One SSE event per Buffer, in order; their concatenation is the whole body. */
export function sseEvents (spec) {
  return responseEvents(spec).map(({ type, ...data }) => sseEvent(type, data))
}

/** One WebSocket text message per event (the Responses-over-WebSocket framing: a JSON event per message). */
export function webSocketMessages (spec) {
  return responseEvents(spec).map((event) => JSON.stringify(event))
}

/** A non-streamed Responses answer of about `spec.bytes` bytes. */
export function jsonBody (spec) {
  const rand = random(spec.seed)
  const parts = []
  let size = 0
  while (size < spec.bytes) {
    const piece = text(rand, 16)
    parts.push(piece)
    size += Buffer.byteLength(piece) + 1
  }
  const id = responseId(spec)
  const body = { id, object: 'response', status: 'completed', model: MODEL, output: [{ id: `msg_soak_${spec.id}`, type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', annotations: [], text: parts.join(' ') }] }], usage: usageOf(parts.length) }
  return Buffer.from(JSON.stringify(body), 'utf8')
}

/** An upstream error answer (`spec.status`), OpenAI-style. */
export function errorBody (spec) {
  return Buffer.from(JSON.stringify({ error: { message: `soak upstream answered ${spec.status} on purpose (${spec.id})`, type: spec.status >= 500 ? 'server_error' : 'invalid_request_error', code: `soak_${spec.status}`, param: null } }), 'utf8')
}

/** The request body the client sends: the spec rides in `metadata.soak`. */
export function requestBody (spec, extra = {}) {
  return JSON.stringify({ model: MODEL, stream: spec.stream !== false, input: `soak ${spec.kind} ${spec.id}`, ...extra, metadata: { soak: JSON.stringify(spec) } })
}

/** The `response.create` message of one WebSocket turn. */
export function createMessage (spec) {
  return JSON.stringify({ type: 'response.create', model: MODEL, input: `soak ${spec.kind} ${spec.id}`, metadata: { soak: JSON.stringify(spec) } })
}

/** The spec inside a request body or `response.create` message; undefined when there is none. */
export function specOf (json) {
  try {
    return parseSpec(JSON.parse(json)?.metadata?.soak)
  } catch {
    return undefined
  }
}

/** A spec from its JSON text (`metadata.soak`, or a GET's `?soak=`); undefined when absent or broken. */
export function parseSpec (text) {
  if (typeof text !== 'string') return undefined
  try {
    const spec = JSON.parse(text)
    return typeof spec?.id === 'string' ? spec : undefined
  } catch {
    return undefined
  }
}

/**
 * Where the upstream cuts its writes: each event is split into 1–3 pieces at random byte offsets
 * (often inside a multi-byte character), so chunk boundaries never line up with events.
 */
export function writePieces (events, seed) {
  const rand = random(seed ^ 0x5eed)
  return events.map((event) => {
    const pieces = []
    let from = 0
    const cuts = between(rand, 0, 2)
    for (let c = 0; c < cuts && event.length - from > 2; c++) {
      const at = from + between(rand, 1, event.length - from - 1)
      pieces.push(event.subarray(from, at))
      from = at
    }
    pieces.push(event.subarray(from))
    return pieces
  })
}
