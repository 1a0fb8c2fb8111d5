/**
 * Cache analysis over WebSocket, with real sockets: each `response.create` a client sends is
 * fingerprinted as its HTTP body would be, so a WebSocket call's miss is explained as
 * `prefix_changed` against the session's previous call, HTTP or WebSocket — also when the
 * client compresses its messages (permessage-deflate, as codex does).
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { PrefixFingerprint } from '../../src/observe/prefix-fingerprint.js'
import type { CallRecord } from '../../src/session/call-record.js'
import { answerCreatesWithChosenUsage, answerTurn, answerWithChosenUsage, callBody, createMessage, modelCall, OTHER_TOOLS, recordsUntil, usageAt4BytesPerToken, userTurn, webSocketCall, type CallOptions } from '../support/cache-calls.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { acceptRaw, deflateMessages, encodeFrame, rawWebSocket, writeInPieces } from '../support/raw-websocket.js'
import { responseEvents, startWebSocketUpstream, type UpstreamWebSocket, type WebSocketUpstream } from '../support/websocket-upstream.js'
import { WebSocket, type WsSocket } from '../support/ws.js'

const BIG = 2000
const TEXT = 0x1
const CONTINUATION = 0x0

async function setUp (t: Test, env: Record<string, string> = {}, perMessageDeflate: false | Record<string, unknown> = false): Promise<{ gateway: RunningGateway, upstream: WebSocketUpstream }> {
  const upstream = await startWebSocketUpstream({ perMessageDeflate, http: answerWithChosenUsage })
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...env })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  return { gateway, upstream }
}

/** A client WebSocket through the gateway in `session`, its upstream end answering every response.create. */
async function openSession (t: Test, { gateway, upstream }: { gateway: RunningGateway, upstream: WebSocketUpstream }, session: string, perMessageDeflate: false | Record<string, unknown> = false): Promise<{ ws: WsSocket, server: UpstreamWebSocket, agreed: string }> {
  const accepted = upstream.nextWebSocket()
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/responses`, { perMessageDeflate, headers: { 'session-id': session } })
  t.teardown(() => { ws.terminate() })
  let agreed = ''
  ws.on('upgrade', (response: IncomingMessage) => { agreed = response.headers['sec-websocket-extensions'] ?? '' })
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve())
    ws.on('error', reject)
  })
  const server = await accepted
  answerCreatesWithChosenUsage(server)
  return { ws, server, agreed }
}

/** The session's records as the store keeps them (with their fingerprints), oldest first, once `count` are there. */
async function storedRecords (gateway: RunningGateway, session: string, count: number): Promise<CallRecord[]> {
  await recordsUntil(gateway.origin, session, count)
  return [...(await gateway.store.calls(session))!].reverse()
}

/** The fingerprint the HTTP tap gives the body of a call with these options. */
function httpFingerprint (options: CallOptions): string {
  const tap = new PrefixFingerprint()
  tap.push(Buffer.from(callBody(options)))
  return tap.result()!.fingerprint
}

t.test('a WebSocket session whose second response.create changes instructions misses with prefix_changed', async (t) => {
  const setup = await setUp(t)
  const { ws } = await openSession(t, setup, 's-ws-instructions')
  await webSocketCall(ws, { usage: [BIG, 0] })
  await webSocketCall(ws, { usage: [BIG, 0], instructions: 'Now verbose.' })
  await webSocketCall(ws, { usage: [BIG, 0], instructions: 'Now verbose.' })
  const records = await storedRecords(setup.gateway, 's-ws-instructions', 3)
  t.same(records.map((r) => [r.status, r.cache, r.missReason]), [[101, 'miss', 'first_request'], [101, 'miss', 'prefix_changed'], [101, 'miss', 'unexplained']])
  t.match(records[0]!.fingerprint, /^[0-9a-f]{16}$/)
  t.not(records[1]!.fingerprint, records[0]!.fingerprint, 'changed instructions, another fingerprint')
  t.equal(records[2]!.fingerprint, records[1]!.fingerprint, 'an unchanged prefix, the same fingerprint')
  t.equal(records[0]!.fingerprint, httpFingerprint({ usage: [BIG, 0] }), 'the fingerprint its HTTP body would get')
})

t.test('over WebSocket, compressed as codex sends it, a changed input is input_changed and an appended one is not', async (t) => {
  const setup = await setUp(t, {}, {})
  const session = 's-ws-input'
  const { ws, agreed } = await openSession(t, setup, session, {})
  t.match(agreed, /permessage-deflate/, 'the messages go compressed')
  const call = async (input: unknown[]): Promise<void> => await webSocketCall(ws, { input, usage: usageAt4BytesPerToken({ input }) })
  const first = [userTurn('u1', 2100), answerTurn('a1', 1900), userTurn('u2', 2300)]
  await call(first)
  await call([...first, answerTurn('a2', 1700), userTurn('u3', 2500)])
  await call([userTurn('u2', 2300), answerTurn('a2', 1700), userTurn('u3', 2500), answerTurn('a3', 1500), userTurn('u4', 2200)])
  const records = await storedRecords(setup.gateway, session, 3)
  t.same(records.map((r) => [r.status, r.cache, r.missReason]), [[101, 'miss', 'first_request'], [101, 'miss', 'unexplained'], [101, 'miss', 'input_changed']])
  t.same(records.map((r) => [r.inputBytes, r.inputCheckpoints?.length]), [[2913, 7], [2913, 7], [2913, 7]], 'each record keeps digests of its input\'s first bytes, up to the limit less the fields')
})

t.test('a WebSocket session whose response.create changes its reasoning effort misses with prefix_changed', async (t) => {
  const setup = await setUp(t)
  const { ws } = await openSession(t, setup, 's-ws-reasoning')
  const medium = { effort: 'medium', summary: 'auto' }
  const high = { effort: 'high', summary: 'auto' }
  await webSocketCall(ws, { usage: [BIG, 0], reasoning: medium })
  await webSocketCall(ws, { usage: [BIG, 0], reasoning: high })
  await webSocketCall(ws, { usage: [BIG, 0], reasoning: high })
  const records = await storedRecords(setup.gateway, 's-ws-reasoning', 3)
  t.same(records.map((r) => [r.status, r.cache, r.missReason]), [[101, 'miss', 'first_request'], [101, 'miss', 'prefix_changed'], [101, 'miss', 'unexplained']])
  t.equal(records[1]!.fingerprint, httpFingerprint({ usage: [BIG, 0], reasoning: high }), 'the fingerprint its HTTP body would get')
})

t.test('an HTTP call and a WebSocket call with the same prefix get the same fingerprint, in one session', async (t) => {
  const setup = await setUp(t)
  const session = 's-http-and-ws'
  await modelCall(setup.gateway.baseURL, { session, usage: [BIG, 0] })
  await recordsUntil(setup.gateway.origin, session, 1)
  const { ws } = await openSession(t, setup, session)
  await webSocketCall(ws, { usage: [BIG, 0] })
  await recordsUntil(setup.gateway.origin, session, 2)
  await webSocketCall(ws, { usage: [BIG, 0], tools: OTHER_TOOLS })
  await recordsUntil(setup.gateway.origin, session, 3)
  await modelCall(setup.gateway.baseURL, { session, usage: [BIG, 0], tools: OTHER_TOOLS })
  const records = await storedRecords(setup.gateway, session, 4)
  t.same(records.map((r) => [r.status, r.missReason]), [[200, 'first_request'], [101, 'unexplained'], [101, 'prefix_changed'], [200, 'unexplained']],
    'each call judged against the previous one, whichever transport')
  t.equal(records[1]!.fingerprint, records[0]!.fingerprint, 'HTTP then WebSocket, same prefix')
  t.equal(records[3]!.fingerprint, records[2]!.fingerprint, 'WebSocket then HTTP, same prefix')
  t.not(records[2]!.fingerprint, records[1]!.fingerprint)
})

t.test('compressed client messages are inflated on the side and fingerprinted alike', async (t) => {
  const variants: Array<[string, Record<string, unknown>]> = [
    ['the client keeps its window across messages', { threshold: 0 }],
    ['the client resets its compressor after each message', { threshold: 0, clientNoContextTakeover: true }],
    ['the client compresses with a 9-bit window', { threshold: 0, clientMaxWindowBits: 9 }]
  ]
  for (const [name, upstreamDeflate] of variants) {
    t.test(name, async (t) => {
      const setup = await setUp(t, {}, upstreamDeflate)
      const session = `s-deflate-${name.length}`
      const { ws, server, agreed } = await openSession(t, setup, session, { threshold: 0 })
      t.match(agreed, /^permessage-deflate/)
      if (upstreamDeflate.clientNoContextTakeover === true) t.match(agreed, /client_no_context_takeover/)
      if (upstreamDeflate.clientMaxWindowBits === 9) t.match(agreed, /client_max_window_bits=9/)
      const compressed = compressedFramesSeen(server)
      const calls: CallOptions[] = [{ usage: [BIG, 0] }, { usage: [BIG, 0], instructions: 'Now verbose.' }, { usage: [BIG, 0], instructions: 'Now verbose.' }]
      for (const call of calls) await webSocketCall(ws, call)
      t.ok(compressed(), 'the client\'s frames were compressed (RSV1)')
      const records = await storedRecords(setup.gateway, session, 3)
      t.same(records.map((r) => r.missReason), ['first_request', 'prefix_changed', 'unexplained'])
      t.same(records.map((r) => r.fingerprint), calls.map(httpFingerprint), 'the fingerprints their HTTP bodies would get')
    })
  }
})

t.test('a compressed, fragmented response.create goes upstream byte for byte and is still read', async (t) => {
  const { gateway, upstream } = await setUp(t)
  const call: CallOptions = { usage: [BIG, 0], instructions: 'Sent in pieces.' }
  // Two messages through one compressor (context kept), each cut into three masked frames.
  const compressed = await deflateMessages([createMessage({ usage: [BIG, 0] }), createMessage(call)], true)
  const framesOf = (payload: Buffer): Buffer => {
    const third = Math.ceil(payload.length / 3)
    return Buffer.concat([
      encodeFrame({ opcode: TEXT, payload: payload.subarray(0, third), fin: false, rsv1: true, masked: true }),
      encodeFrame({ opcode: CONTINUATION, payload: payload.subarray(third, 2 * third), fin: false, masked: true }),
      encodeFrame({ opcode: CONTINUATION, payload: payload.subarray(2 * third), masked: true })
    ])
  }
  const fromClient = Buffer.concat(compressed.map(framesOf))
  const accepted = new Promise<{ socket: Socket, end: ReturnType<typeof acceptRaw> }>((resolve) => {
    upstream.handleUpgrade((req, socket, head) => resolve({ socket, end: acceptRaw(req, socket, head, ['Sec-WebSocket-Extensions: permessage-deflate']) }))
  })
  const client = await rawWebSocket(gateway.port, '/v1/responses', { 'session-id': 's-raw-deflate', 'Sec-WebSocket-Extensions': 'permessage-deflate' })
  t.equal(client.status, 101)
  const upstreamSide = await accepted
  await writeInPieces(client.socket, fromClient, 7)
  t.ok((await upstreamSide.end.receivedAtLeast(fromClient.length)).equals(fromClient), 'the upstream received exactly the client\'s bytes')
  // The upstream answers each with a plain (uncompressed) response of the chosen usage.
  const answers = ['resp_raw_1', 'resp_raw_2'].flatMap((id) => responseEvents(id, 'ok', { input_tokens: BIG, input_tokens_details: { cached_tokens: 0 }, output_tokens: 1 }))
  upstreamSide.socket.write(Buffer.concat(answers.map((event) => encodeFrame({ opcode: TEXT, payload: event }))))
  const records = await storedRecords(gateway, 's-raw-deflate', 2)
  t.same(records.map((r) => r.missReason), ['first_request', 'prefix_changed'])
  t.same(records.map((r) => r.fingerprint), [httpFingerprint({ usage: [BIG, 0] }), httpFingerprint(call)])
  client.socket.destroy()
})

t.test('CACHE_ANALYSIS=false reads a WebSocket message only for its type: a changed prefix is not told apart', async (t) => {
  const setup = await setUp(t, { CACHE_ANALYSIS: 'false' })
  const { ws } = await openSession(t, setup, 's-ws-off')
  await webSocketCall(ws, { usage: [BIG, 0] })
  await webSocketCall(ws, { usage: [BIG, 0], instructions: 'Now verbose.' })
  const records = await storedRecords(setup.gateway, 's-ws-off', 2)
  t.same(records.map((r) => [r.missReason, r.fingerprint]), [['first_request', null], ['unexplained', null]])
})

// Regression: a response.append (codex's incremental request) was no request, so its response's
// call was timed from the end of the call before it instead of from the append.
t.test('a response.append\'s response is a call timed from the append, with no fingerprint rather than another request\'s', async (t) => {
  const setup = await setUp(t)
  const { ws, server } = await openSession(t, setup, 's-ws-append')
  server.ws.on('message', (data: Buffer) => {
    if (JSON.parse(data.toString('utf8')).type !== 'response.append') return
    for (const event of responseEvents('resp_ws_appended', 'ok')) server.ws.send(event)
  })
  await webSocketCall(ws, { usage: [BIG, 0] })
  const appendSentAt = performance.timeOrigin + performance.now()
  const completed = new Promise<void>((resolve) => ws.on('message', (data: Buffer) => { if (JSON.parse(data.toString('utf8')).type === 'response.completed') resolve() }))
  ws.send(JSON.stringify({ type: 'response.append', input: [{ role: 'user', content: 'and then' }] }))
  await completed
  const records = await storedRecords(setup.gateway, 's-ws-append', 2)
  t.equal(records[0]!.fingerprint, httpFingerprint({ usage: [BIG, 0] }))
  t.ok(records[1]!.time >= appendSentAt, 'the appended call began with its request, not when the call before it ended')
  t.equal(records[1]!.fingerprint, null, 'its prefix is not in it: unknown')
})

/** Whether a compressed client frame (RSV1 on its first byte) reached the upstream since this was called. */
function compressedFramesSeen (server: UpstreamWebSocket): () => boolean {
  let seen = false
  // Each ws send is one write, so on loopback a message's first frame starts a chunk here.
  server.socket.on('data', (chunk: Buffer) => { if ((chunk[0]! & 0x40) !== 0) seen = true })
  return () => seen
}

t.test('regression: a WebSocket response that ended in an error (a rate limit) is passed over when the next miss is judged', async (t) => {
  const upstream = await startWebSocketUpstream({ http: answerWithChosenUsage })
  const gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  const accepted = upstream.nextWebSocket()
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/responses`, { headers: { 'session-id': 's-ws-refused' } })
  t.teardown(() => { ws.terminate() })
  await new Promise<void>((resolve, reject) => { ws.on('open', () => resolve()); ws.on('error', reject) })
  const server = await accepted
  // The first response.create is refused with an `error` event, as a rate-limited one is; the next ones answered.
  server.ws.once('message', () => {
    server.ws.send(JSON.stringify({ type: 'error', status: 429, error: { type: 'rate_limit_exceeded', code: 'rate_limit_exceeded', message: 'slow down' } }))
  })
  // The refused call: the gateway records it once its error has passed.
  await new Promise<void>((resolve) => {
    ws.once('message', () => resolve())
    ws.send(createMessage({ usage: [BIG, 0] }))
  })
  await recordsUntil(gateway.origin, 's-ws-refused', 1)
  answerCreatesWithChosenUsage(server)
  await webSocketCall(ws, { usage: [BIG, 0] })
  const records = await storedRecords(gateway, 's-ws-refused', 2)
  t.same(records.map((r) => [r.status, r.input, r.cache, r.missReason]), [[101, 0, 'n/a', null], [101, BIG, 'miss', 'first_request']], 'the retry is the session\'s first answered call')
})
