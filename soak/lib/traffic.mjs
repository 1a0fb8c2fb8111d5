/**
 * The kinds of exchange the soak's clients make: what each sends, and what must come back
 * through the gateway for it to count as ok (see soak/README.md for the table).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { WebSocket } from 'ws'
import { checkComplete, checkCut, checkPrefix, checkStatus, errorName } from './checks.mjs'
import { EXCHANGE_TIMEOUT_MS, exchange, monotonicMicros } from './http-exchange.mjs'
import { between, createMessage, errorBody, jsonBody, responseId, sseEvents, webSocketMessages } from './payloads.mjs'
import { messageInbox } from './websocket-inbox.mjs'

/** "A moment" (docs/websocket.md): how long after a WebSocket closes its usage must be complete. */
const USAGE_SETTLE_MS = 250

/** How often each kind starts, relative to the others. */
export const MIX = {
  short: 28,
  long: 12,
  abort: 8,
  json: 14,
  status: 5,
  'slow-reader': 3,
  chain: 8,
  websocket: 10,
  'websocket-abort': 4,
  'upstream-fail': 4,
  stall: 2
}

export const KIND_DESCRIPTIONS = {
  short: 'SSE, 6–30 events written at once, cut at random byte offsets; 30% with a session-id header',
  long: 'SSE, 60–250 events 5–40 ms apart (1–10 s)',
  abort: 'SSE 10–30 ms apart; the client leaves after a random share of it',
  json: 'non-streamed answers, 200 B–256 KB, content-length or chunked; a third are GET /v1/responses/{id}',
  status: 'upstream 400/404/429/500/502/503 with an OpenAI-style body, passed through',
  'slow-reader': '1–3 MB SSE read slowly, with one pause longer than the upstream idle timeout (backpressure)',
  chain: '3–5 streamed turns linked by previous_response_id, each on a new connection: one session throughout',
  websocket: '2–5 response.create turns (half with permessage-deflate), close 1000; half then continue over HTTP with previous_response_id; usage counts every response',
  'websocket-abort': 'WebSocket whose client vanishes (TCP reset) in the middle of a turn',
  'upstream-fail': 'the upstream destroys its connection mid-stream: the client must see an error, not a clean end',
  stall: 'the upstream goes silent mid-stream: the gateway\'s idle timeout must cut client and upstream'
}

/**
 * `ctx`: { origin, wsOrigin, agent, tally, rand, idleTimeoutMs, scale, nextId() }.
 * Each scenario gets an exchange record `x` (see tally.mjs) and a spec maker.
 */
const SCENARIOS = {
  async short (ctx, x) {
    const spec = newSpec(ctx, 'short', { mode: 'sse', events: between(ctx.rand, 6, 30), interval: 0 })
    const session = ctx.rand() < 0.3 ? `soak-header-${spec.id}` : undefined
    const result = await exchange(ctx, spec, { session })
    checkComplete(x, spec, result, sseBytes(spec), { session })
  },

  async long (ctx, x) {
    const spec = newSpec(ctx, 'long', { mode: 'sse', events: between(ctx.rand, scaled(ctx, 60), scaled(ctx, 250)), interval: between(ctx.rand, 5, 40) })
    const result = await exchange(ctx, spec)
    checkComplete(x, spec, result, sseBytes(spec))
  },

  async abort (ctx, x) {
    const spec = newSpec(ctx, 'abort', { mode: 'sse', events: between(ctx.rand, scaled(ctx, 100), scaled(ctx, 200)), interval: between(ctx.rand, 10, 30) })
    const expected = sseBytes(spec)
    const abortAfter = between(ctx.rand, 200, Math.floor(expected.length * 0.4))
    const result = await exchange(ctx, spec, { abortAfter })
    if (result.timedOut) return x.fail('timeout', `${spec.id} after ${EXCHANGE_TIMEOUT_MS} ms`)
    if (!result.aborted) {
      x.fail(result.error === undefined ? 'abort-never-reached' : errorName(result.error), `${spec.id}: ${result.error?.message ?? 'stream ended before the client left'}`)
      return
    }
    checkStatus(x, spec, result, 200)
    checkPrefix(x, spec, result.received, expected)
  },

  async json (ctx, x) {
    const r = ctx.rand()
    const bytes = r < 0.6 ? between(ctx.rand, 200, 2_000) : r < 0.9 ? between(ctx.rand, 2_000, 65_536) : between(ctx.rand, 65_536, 262_144)
    const spec = newSpec(ctx, 'json', { mode: 'json', stream: false, bytes, chunked: ctx.rand() < 0.5 })
    const retrieve = ctx.rand() < 1 / 3
    const result = retrieve
      ? await exchange(ctx, spec, { method: 'GET', path: `/v1/responses/${responseId(spec)}?soak=${encodeURIComponent(JSON.stringify(spec))}` })
      : await exchange(ctx, spec)
    checkComplete(x, spec, result, jsonBody(spec))
  },

  async status (ctx, x) {
    const statuses = [400, 404, 429, 500, 502, 503]
    const spec = newSpec(ctx, 'status', { mode: 'status', stream: false, status: statuses[between(ctx.rand, 0, statuses.length - 1)] })
    const result = await exchange(ctx, spec)
    checkComplete(x, spec, result, errorBody(spec), { status: spec.status })
  },

  async 'slow-reader' (ctx, x) {
    const spec = newSpec(ctx, 'slow-reader', { mode: 'sse', events: between(ctx.rand, scaled(ctx, 300), scaled(ctx, 700)), words: 400, interval: 0 })
    const expected = sseBytes(spec)
    const pauseAt = Math.floor(expected.length * (0.1 + 0.3 * ctx.rand()))
    let paused = false
    const result = await exchange(ctx, spec, {
      // Slower than the upstream writes, so the gateway must pause it; once, longer than the
      // upstream idle timeout: a paused upstream is not idle.
      onChunk: async (received) => {
        if (!paused && received >= pauseAt) {
          paused = true
          await sleep(ctx.idleTimeoutMs * 1.5)
        } else {
          await sleep(8)
        }
      }
    })
    checkComplete(x, spec, result, expected)
  },

  async chain (ctx, x) {
    const turns = between(ctx.rand, 3, 5)
    let previous
    let session
    for (let turn = 1; turn <= turns; turn++) {
      const spec = newSpec(ctx, 'chain', { mode: 'sse', events: between(ctx.rand, 5, 30), interval: between(ctx.rand, 0, 3), turn })
      // A new connection for every turn (`reset`), so only previous_response_id can carry the session.
      const result = await exchange(ctx, spec, { reset: true, extra: previous === undefined ? {} : { previous_response_id: previous } })
      if (!checkComplete(x, spec, result, sseBytes(spec))) return
      const seen = result.headers['x-soak-session']
      if (session === undefined) session = seen
      else if (seen !== session) return x.fail('lineage-broken', `${spec.id} turn ${turn}: upstream got session ${seen}, turn 1 had ${session}`)
      previous = responseId(spec)
    }
  },

  async websocket (ctx, x) {
    await webSocketSession(ctx, x, { turns: between(ctx.rand, 2, 5), abort: false })
  },

  async 'websocket-abort' (ctx, x) {
    await webSocketSession(ctx, x, { turns: between(ctx.rand, 1, 3), abort: true })
  },

  async 'upstream-fail' (ctx, x) {
    const events = between(ctx.rand, 30, 80)
    const spec = newSpec(ctx, 'upstream-fail', { mode: 'sse', events, interval: between(ctx.rand, 2, 8), cut: 'destroy', cutAfter: between(ctx.rand, 5, Math.floor(events / 2)) })
    const result = await exchange(ctx, spec)
    checkCut(ctx, x, spec, result)
  },

  async stall (ctx, x) {
    const spec = newSpec(ctx, 'stall', { mode: 'sse', events: 30, interval: 2, cut: 'stall', cutAfter: between(ctx.rand, 5, 20) })
    ctx.tally.stalls.add(spec.id)
    const result = await exchange(ctx, spec)
    if (checkCut(ctx, x, spec, result) && result.lastByteAt !== undefined) ctx.tally.stallCutMs.push(result.endedAt - result.lastByteAt)
  }
}

/** `n` shrunk by the run's scale (--smoke shortens long streams so it ends in seconds). */
function scaled (ctx, n) {
  return Math.max(1, Math.round(n * ctx.scale))
}

function newSpec (ctx, kind, fields) {
  return { id: ctx.nextId(), seed: Math.floor(ctx.rand() * 2 ** 31), kind, ...fields }
}

function sseBytes (spec) {
  return Buffer.concat(sseEvents(spec))
}


/**
 * A WebSocket through the gateway: `turns` response.create messages, each answered by the
 * upstream's events one per message, checked message by message. With `abort`, the client's
 * TCP connection is destroyed in the middle of the last turn.
 */
async function webSocketSession (ctx, x, { turns, abort }) {
  const kind = x.kind
  const deflate = ctx.rand() < 0.5
  const session = ctx.rand() < 0.5 ? `soak-ws-${ctx.nextId()}` : undefined
  const specs = []
  for (let turn = 1; turn <= turns; turn++) {
    // The turn a client walks out of is paced, so the upstream is still answering when it goes.
    const last = abort && turn === turns
    specs.push(newSpec(ctx, kind, { events: last ? between(ctx.rand, 30, 60) : between(ctx.rand, 5, 40), interval: last ? between(ctx.rand, 10, 20) : between(ctx.rand, 0, 10), turn, deflate }))
  }
  const abortAfterMessages = abort ? between(ctx.rand, 1, Math.floor(specs.at(-1).events / 3)) : -1
  ctx.tally.webSockets++
  const headers = session === undefined ? {} : { 'session-id': session }
  const ws = new WebSocket(`${ctx.wsOrigin}/v1/responses${deflate ? '?deflate=1' : ''}`, { headers, perMessageDeflate: deflate })
  const inbox = messageInbox(ws)
  let upstreamSession
  ws.on('upgrade', (res) => { upstreamSession = res.headers['x-soak-session'] })
  const timer = setTimeout(() => inbox.fail(new Error(`timeout after ${EXCHANGE_TIMEOUT_MS} ms`)), EXCHANGE_TIMEOUT_MS)
  try {
    await inbox.opened
    if (typeof upstreamSession !== 'string' || upstreamSession === '') x.fail('session-headers', `${specs[0].id}: the 101 says the upstream got no session-id`)
    else if (session !== undefined && upstreamSession !== session) x.fail('session-regenerated', `${specs[0].id}: client sent session-id ${session}, upstream got ${upstreamSession}`)
    for (const spec of specs) {
      ws.send(createMessage(spec))
      const expected = webSocketMessages(spec)
      for (let i = 0; i < expected.length; i++) {
        const data = await inbox.next()
        const want = Buffer.from(expected[i], 'utf8')
        if (!data.equals(want)) {
          x.fail('websocket-message-mismatch', `${spec.id} message ${i}: ${data.length} bytes, expected ${want.length}`)
          x.tally.corruptedBytes += Math.max(data.length, want.length)
          ws.terminate()
          return
        }
        x.verified(data.length)
        if (abort && spec === specs.at(-1) && i + 1 === abortAfterMessages) {
          ctx.tally.clientAborts.set(spec.id, monotonicMicros())
          ws.terminate()
          return
        }
      }
    }
    ws.close(1000, 'done')
    const { code } = await inbox.closed
    if (code !== 1000) x.fail('websocket-close-code', `${specs[0].id}: close code ${code} after a normal close`)
  } catch (err) {
    x.fail(`websocket-${err.code ?? err.message.split(' ')[0]}`, `${specs[0].id}: ${err.message}`)
    ws.terminate()
    return
  } finally {
    clearTimeout(timer)
  }
  if (abort || upstreamSession === undefined) return
  const messages = specs.reduce((a, s) => a + s.events + 2, 0)
  const shape = `${turns} turns, ${messages} messages, permessage-deflate ${deflate ? 'on' : 'off'}`
  // Compressed messages are read on another path than plain ones: name which in the error kind.
  const compression = deflate ? 'permessage-deflate' : 'uncompressed'
  // Lineage across transports: the WebSocket's last response id, continued over HTTP, keeps its session.
  let continued = false
  if (ctx.rand() < 0.5) {
    const closedAt = performance.now()
    const previous = responseId(specs.at(-1))
    const spec = newSpec(ctx, kind, { mode: 'sse', events: between(ctx.rand, 3, 10), interval: 0 })
    const result = await exchange(ctx, spec, { reset: true, extra: { previous_response_id: previous } })
    if (checkComplete(x, spec, result, sseBytes(spec))) {
      continued = result.headers['x-soak-session'] === upstreamSession
      if (!continued) x.fail(`lineage-broken (WebSocket, ${compression})`, `${spec.id}: continued WebSocket response ${previous} (${shape}) over HTTP ${(result.endedAt - closedAt).toFixed(0)} ms after the close; upstream got session ${result.headers['x-soak-session']}, the WebSocket had ${upstreamSession}`)
    }
  }
  // Usage: every response the WebSocket carried (and the HTTP continuation, when it landed in the
  // session) is counted in the session's usage, read from the same messages as response ids.
  // Compressed messages are read off the relay path, so they may be counted a moment late: ask
  // after USAGE_SETTLE_MS.
  await sleep(USAGE_SETTLE_MS)
  const counted = await responsesCounted(ctx, upstreamSession)
  const expected = turns + (continued ? 1 : 0)
  if (counted !== expected) x.fail(`usage-undercounted (WebSocket, ${compression})`, `${specs[0].id} (${shape}): ${USAGE_SETTLE_MS} ms after the close, GET /gateway/sessions/${upstreamSession} counts ${counted ?? 'nothing'} responses, expected ${expected}`)
}

/** `requests` in the gateway's usage for a session (GET /gateway/sessions/{id}, open on loopback); undefined when it has none. */
async function responsesCounted (ctx, session) {
  const res = await request(`${ctx.origin}/gateway/sessions/${encodeURIComponent(session)}`, { dispatcher: ctx.agent })
  const body = await res.body.json()
  return res.statusCode === 200 ? body.requests : undefined
}

/** Runs one exchange of `kind`; `x` is its record in the tally (see tally.mjs). */
export async function runExchange (kind, ctx, x) {
  await SCENARIOS[kind](ctx, x)
}
