/**
 * A WebSocket client's messages read for their type and prefix: only a request
 * (`response.create`, `response.append`) is owed an answer (and reported), each response takes the fingerprint of the
 * request it answers, whatever the chunking, fragmentation or compression; what cannot be read
 * gives "unknown" (null), never a wrong fingerprint, and is never idle.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { PrefixFingerprint } from '../../../src/observe/prefix-fingerprint.js'
import { FrameParser, Opcode } from '../../../src/websocket/frame-parser.js'
import { FrameObserver } from '../../../src/websocket/frame-observer.js'
import { ClientRequests } from '../../../src/websocket/client-requests.js'
import { RequestMessages, type RequestMessage } from '../../../src/websocket/request-messages.js'
import { MAX_INFLATED_MESSAGE_BYTES } from '../../../src/websocket/message-inflater.js'
import { randomChunks } from '../../support/mock-upstream.js'
import { deflateMessages, encodeFrame } from '../../support/raw-websocket.js'

const TOOLS = [{ type: 'function', name: 'shell', parameters: { type: 'object', properties: { cmd: { type: 'string' } } } }]
const body = (instructions: string): Record<string, unknown> => ({ model: 'gpt-5', instructions, tools: TOOLS, input: [{ role: 'user', content: `"${instructions}" {[` }], stream: true })
const create = (instructions: string): string => JSON.stringify({ type: 'response.create', ...body(instructions) })
const PROCESSED = JSON.stringify({ type: 'response.processed', response_id: 'resp_1' })
const STEER = JSON.stringify({ type: 'response.steer', input: [{ role: 'user', content: 'and also' }] })
const APPEND = JSON.stringify({ type: 'response.append', input: [{ role: 'user', content: 'and then' }] })

/** The fingerprint an HTTP body with these instructions gets. */
/** The fingerprint of the request the response now ending answers; null when unknown. */
async function fingerprintNow (requests: ClientRequests): Promise<string | null> {
  return (await requests.ofCurrentResponse())?.fingerprint ?? null
}

function httpFingerprint (instructions: string): string {
  const tap = new PrefixFingerprint()
  tap.push(Buffer.from(JSON.stringify(body(instructions))))
  return tap.result()!.fingerprint
}

/** Client frames (masked) through a parser into `requests`, in random chunks. */
function send (requests: ClientRequests, frames: Buffer[], seed = 7): void {
  const parser = new FrameParser(requests.frames)
  for (const chunk of randomChunks(Buffer.concat(frames), seed, 40)) parser.push(chunk)
}

const text = (payload: string | Buffer, rsv1 = false): Buffer => encodeFrame({ opcode: Opcode.text, payload, rsv1, masked: true })

t.test('each response takes the oldest unanswered response.create; other messages are passed over', async (t) => {
  const requests = new ClientRequests(undefined)
  const parser = new FrameParser(requests.frames)
  parser.push(Buffer.concat([text(PROCESSED), text(create('one')), text(PROCESSED), text(create('two'))]))
  t.equal(await fingerprintNow(requests), httpFingerprint('one'))
  t.equal(await fingerprintNow(requests), httpFingerprint('one'), 'asked again before its end: the same request')
  requests.answered()
  t.equal(await fingerprintNow(requests), httpFingerprint('two'), 'pipelined: the next one')
  requests.answered()
  t.equal(await fingerprintNow(requests), null, 'none left: unknown')
  requests.answered() // an error answering nothing leaves the next request paired
  parser.push(text(create('three')))
  t.equal(await fingerprintNow(requests), httpFingerprint('three'))
})

t.test('only a response.create is owed an answer and reported; other messages are read and owe nothing', async (t) => {
  const started: number[] = []
  const requests = new ClientRequests(undefined, { onRequest: (startedAt) => started.push(startedAt) })
  const parser = new FrameParser(requests.frames)
  t.ok(requests.idle, 'nothing sent')
  parser.push(Buffer.concat([text(PROCESSED), text(STEER)]))
  t.ok(requests.idle, 'a response.processed and a response.steer owe nothing')
  t.same(started, [], 'and are no requests')
  const before = performance.now()
  parser.push(text(create('one')))
  t.notOk(requests.idle, 'a response.create is owed its answer')
  t.equal(started.length, 1, 'reported once read')
  t.ok(started[0]! >= before && started[0]! <= performance.now(), 'with the time its first frame came')
  requests.answered()
  t.ok(requests.idle, 'answered')
  t.equal(started.length, 1)

  const message = Buffer.from(STEER)
  parser.push(encodeFrame({ opcode: Opcode.text, payload: message.subarray(0, 10), fin: false, masked: true }))
  t.notOk(requests.idle, 'a message still arriving may be a response.create: owed until read')
  parser.push(encodeFrame({ opcode: Opcode.continuation, payload: message.subarray(10), masked: true }))
  t.ok(requests.idle, 'read whole, it was not')
  parser.push(encodeFrame({ opcode: Opcode.binary, payload: Buffer.from([1, 2, 3]), masked: true }))
  t.ok(requests.idle, 'a binary message is no response.create')

  parser.push(Buffer.concat([text(STEER), text(create('last'))]))
  requests.finish()
  t.equal(started.length, 2, 'a response.create no event asked about is reported when the connection closes')
})

// Regression: only a response.create counted as a request, so a response.append (codex's
// incremental request, answered by a response of its own) owed nothing, and its response took
// the fingerprint of the next response.create sent, a wrong one.
t.test('a response.append is a request too: owed its answer, reported, and its response takes no other request\'s fingerprint', async (t) => {
  const started: number[] = []
  const requests = new ClientRequests(undefined, { onRequest: (startedAt) => started.push(startedAt) })
  const parser = new FrameParser(requests.frames)
  parser.push(text(APPEND))
  t.notOk(requests.idle, 'owed its answer')
  t.equal(started.length, 1, 'reported as a request')
  parser.push(text(create('after')))
  t.equal(await fingerprintNow(requests), null, 'its response: no prefix fields of its own, so unknown, not the next request\'s')
  requests.answered()
  t.equal(await fingerprintNow(requests), httpFingerprint('after'), 'the response.create after it keeps its own')
  requests.answered()
  t.ok(requests.idle)
  t.equal(started.length, 2)
})

t.test('a message of a type the protocol does not define, or no JSON at all, owes nothing once read', async (t) => {
  const started: number[] = []
  const requests = new ClientRequests(undefined, { onRequest: (startedAt) => started.push(startedAt) })
  const parser = new FrameParser(requests.frames)
  parser.push(Buffer.concat([text(JSON.stringify({ type: 'vendor.custom_message', data: 1 })), text('not json'), text(JSON.stringify({ input: 'no type' }))]))
  t.ok(requests.idle)
  t.same(started, [])
})

t.test('a compressed message is owed until inflated and read; an answer waits for it, and tracing hears of it after the request', async (t) => {
  const order: string[] = []
  let changed = (): void => {}
  const requests = new ClientRequests({ noContextTakeover: false }, {
    onRequest: () => order.push('request'),
    onChange: () => changed()
  })
  const parser = new FrameParser(requests.frames)
  const [steer, one] = await deflateMessages([STEER, create('one')], true)
  parser.push(text(steer!, true))
  t.notOk(requests.idle, 'not read yet: it could be a response.create')
  await new Promise<void>((resolve) => { changed = resolve })
  t.ok(requests.idle, 'inflated and read: a response.steer owes nothing')

  parser.push(text(one!, true))
  requests.answered(() => order.push('answered'))
  t.same(order, [], 'the answer waits for the request it may answer')
  await new Promise<void>((resolve) => { changed = resolve })
  t.same(order, ['request', 'answered'], 'the request is reported before its answer')
  t.ok(requests.idle)
})

t.test('an upstream event answers only a message sent whole before it came', async (t) => {
  let inflated = 0
  let onInflated = (): void => {}
  const requests = new ClientRequests({ noContextTakeover: false }, { onChange: () => { inflated++; onInflated() } })
  const parser = new FrameParser(requests.frames)
  const [processed, one] = await deflateMessages([PROCESSED, create('one')], true)
  parser.push(text(processed!, true))
  let answered = false
  // An `error` answering the response.processed, come before the gateway inflated it…
  requests.answered(() => { answered = true })
  // …and a response.create sent after it.
  parser.push(text(one!, true))
  while (inflated < 2) await new Promise<void>((resolve) => { onInflated = resolve })
  t.ok(answered, 'the error answered no request')
  t.notOk(requests.idle, 'the response.create sent after it is still owed its answer')
  t.equal(await fingerprintNow(requests), httpFingerprint('one'))
})

t.test('fragmented messages, control frames between fragments, cut anywhere: the HTTP body\'s fingerprint', async (t) => {
  const message = Buffer.from(create('fragmented'))
  const frames = [
    encodeFrame({ opcode: Opcode.text, payload: message.subarray(0, 10), fin: false, masked: true }),
    encodeFrame({ opcode: Opcode.ping, payload: 'p', masked: true }),
    encodeFrame({ opcode: Opcode.continuation, payload: message.subarray(10, 100), fin: false, masked: true }),
    encodeFrame({ opcode: Opcode.continuation, payload: message.subarray(100), masked: true }),
    encodeFrame({ opcode: Opcode.binary, payload: Buffer.from([1, 2, 3]), masked: true })
  ]
  for (const seed of [1, 2, 3, 42]) {
    const requests = new ClientRequests(undefined)
    send(requests, frames, seed)
    t.equal(await fingerprintNow(requests), httpFingerprint('fragmented'), `seed ${seed}`)
  }
})

t.test('compressed messages are inflated in order, with or without context takeover, and waited for', async (t) => {
  const texts = [PROCESSED, create('one'), create('two'), create('two')]
  for (const contextTakeover of [true, false]) {
    const requests = new ClientRequests({ noContextTakeover: !contextTakeover })
    const compressed = await deflateMessages(texts, contextTakeover)
    send(requests, compressed.map((payload) => text(payload, true)))
    // Asked before the inflater had a turn: each answer waits for its message.
    const answers: Array<Promise<string | null>> = []
    for (let i = 0; i < 3; i++) {
      answers.push(fingerprintNow(requests))
      requests.answered()
    }
    t.same(await Promise.all(answers), [httpFingerprint('one'), httpFingerprint('two'), httpFingerprint('two')], contextTakeover ? 'one window' : 'a fresh window per message')
  }
})

t.test('regression: a compressed binary message keeps the client\'s window right: the requests after it get their own fingerprint', async (t) => {
  const requests = new ClientRequests({ noContextTakeover: false })
  // The binary message holds the next request's very bytes, so that request compresses to a
  // reference back into it: an inflater that skipped it would read the first request again.
  const [one, binary, two] = await deflateMessages([create('one'), create('two'), create('two')], true)
  const binaryFrame = encodeFrame({ opcode: Opcode.binary, payload: binary!, rsv1: true, masked: true })
  send(requests, [text(one!, true), binaryFrame, text(two!, true)])
  t.equal(await fingerprintNow(requests), httpFingerprint('one'))
  requests.answered()
  t.equal(await fingerprintNow(requests), httpFingerprint('two'), 'not the first request\'s')
  requests.answered()
  t.equal(requests.idle, true, 'the binary message owes no answer')
})

t.test('compressed messages still inflating when the connection closes are read to the end', async (t) => {
  const requests = new ClientRequests({ noContextTakeover: false })
  send(requests, (await deflateMessages([create('late')], true)).map((payload) => text(payload, true)))
  requests.finish()
  t.equal(await fingerprintNow(requests), httpFingerprint('late'))
})

t.test('a response.create with its fields nested under response has no fingerprint, not a false one', async (t) => {
  const requests = new ClientRequests(undefined)
  send(requests, [text(JSON.stringify({ type: 'response.create', response: body('nested') }))])
  t.equal(await fingerprintNow(requests), null)
})

t.test('what cannot be read makes every prefix unknown from then on, and never throws', async (t) => {
  t.test('a compressed frame when no compression was agreed', async (t) => {
    const requests = new ClientRequests(undefined)
    send(requests, [text(create('plain')), text(Buffer.from([0xf2, 0x34, 0x00]), true), text(create('after'))])
    t.equal(await fingerprintNow(requests), null)
    requests.answered()
    t.equal(await fingerprintNow(requests), null)
  })
  t.test('corrupt compressed data', async (t) => {
    const requests = new ClientRequests({ noContextTakeover: false })
    send(requests, [text(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), true)])
    const answer = fingerprintNow(requests)
    await nextTurn()
    t.equal(await answer, null)
  })
  t.test('more compressed bytes waiting for the inflater than allowed', async (t) => {
    const requests = new ClientRequests({ noContextTakeover: false })
    new FrameParser(requests.frames).push(text(Buffer.alloc(9 * 1024 * 1024, 0x41), true))
    t.equal(await fingerprintNow(requests), null)
  })
  t.test('regression: a compressed message that inflates past MAX_INFLATED_MESSAGE_BYTES (a deflate bomb)', async (t) => {
    const requests = new ClientRequests({ noContextTakeover: false })
    // A response.create whose trailing whitespace would still leave it a readable request.
    const [bomb] = await deflateMessages([create('bomb') + ' '.repeat(MAX_INFLATED_MESSAGE_BYTES)], true)
    send(requests, [text(bomb!, true)])
    t.equal(await fingerprintNow(requests), null, 'unknown, not read on past the bound')
    t.equal(requests.frames.reading, false, 'nothing more is inflated for the connection')
  })
  t.test('more unanswered messages than a client pairs', async (t) => {
    const requests = new ClientRequests(undefined)
    send(requests, Array.from({ length: 65 }, () => text(create('again'))))
    t.equal(await fingerprintNow(requests), null)
    t.equal(requests.frames.reading, false, 'nothing more is copied or read for the rest of the connection')
  })

  t.test('a data frame inside an unfinished message: that message could never end, so reading stops', async (t) => {
    const requests = new ClientRequests(undefined)
    const first = encodeFrame({ opcode: Opcode.text, payload: create('one').slice(0, 20), fin: false, masked: true })
    send(requests, [first, text(create('two'))])
    t.equal(await fingerprintNow(requests), null, 'answered unknown, not left waiting')
    t.equal(requests.idle, false)
    t.equal(requests.frames.reading, false)
  })
})

t.test('cache analysis off: only each message\'s type is read, and a request still counts', async (t) => {
  const requests = new ClientRequests(undefined, { readsPrefixes: false })
  const started: number[] = []
  const typed = new ClientRequests(undefined, { readsPrefixes: false, onRequest: (at) => started.push(at) })
  send(requests, [text(PROCESSED), text(create('one'))])
  send(typed, [text(create('one')), text(STEER)])
  t.equal(await fingerprintNow(requests), null, 'no fingerprint is taken')
  t.equal(typed.idle, false, 'its response.create is owed an answer')
  t.equal(started.length, 1, 'the response.create is a request; the steer is not')
  typed.answered()
  t.equal(typed.idle, true, 'answered, and the steer owes nothing')
})

t.test('regression: a long plain message streaming in with no idle turn is read as it comes, so what it holds unread stays bounded', async (t) => {
  // Idle turns never come while a message streams in as fast as it is relayed: the copies of
  // its slices used to be held, all of them, until it had passed (a 256 MiB message: 256 MiB).
  const cases: Array<[string, boolean, string]> = [
    ['cache analysis off: reading stops at the type, and so does copying', true, '{"type":"response.create","input":"'],
    ['cache analysis on: read on (here up to what makes it no JSON object)', false, '{"type":"response.create"} and then no JSON: ']
  ]
  for (const [name, typesOnly, start] of cases) {
    const seen: RequestMessage[] = []
    const reader = new RequestMessages({ deflate: undefined, typesOnly, onStart: (message) => seen.push(message), onEnd: () => {}, onWhole: () => {}, onLost: () => t.fail('lost') })
    const payload = Buffer.concat([Buffer.from(start), Buffer.alloc(8 * 1024 * 1024, 0x20)])
    const frame = encodeFrame({ opcode: Opcode.text, payload, masked: true })
    const parser = new FrameParser(reader)
    // All but the last bytes, in relay-sized chunks, with no turn of the event loop between them:
    // each read of a socket is a callback of its own, with only its microtasks after it.
    for (let at = 0; at < frame.length - 1; at += 64 * 1024) {
      parser.push(frame.subarray(at, Math.min(at + 64 * 1024, frame.length - 1)))
      await Promise.resolve()
    }
    t.ok(seen[0]!.tap.settled, name)
  }
})

t.test('a client\'s request cut at every possible point, fragmented with a ping between, then a Close without a body: its fingerprint and the close code', async (t) => {
  for (const deflate of [false, true]) {
    const [payload] = deflate ? await deflateMessages([create('cut')], true) : [Buffer.from(create('cut'))]
    const bytes = Buffer.concat([
      encodeFrame({ opcode: Opcode.text, payload: payload!.subarray(0, 4), fin: false, rsv1: deflate, masked: true }),
      encodeFrame({ opcode: Opcode.ping, payload: 'x', masked: true }),
      encodeFrame({ opcode: Opcode.continuation, payload: payload!.subarray(4), masked: true }),
      encodeFrame({ opcode: Opcode.close, payload: '', masked: true })
    ])
    const differing: number[] = []
    for (let at = 0; at < bytes.length; at++) {
      const requests = new ClientRequests(deflate ? { noContextTakeover: false } : undefined)
      let closeCode: number | undefined
      const observer = new FrameObserver({ messages: requests.frames, onClose: (code) => { closeCode = code } })
      observer.push(bytes.subarray(0, at))
      observer.push(bytes.subarray(at))
      if (await fingerprintNow(requests) !== httpFingerprint('cut') || closeCode !== 1005 || !observer.atBoundary) differing.push(at)
    }
    t.same(differing, [], `${deflate ? 'compressed' : 'plain'}: cut at each of ${bytes.length} points`)
  }
})
