/**
 * The gateway's reading of WebSocket traffic, piece by piece: frames found across any
 * chunking, text messages reassembled and inflated (with and without context takeover), and
 * Responses events told apart, never throwing on garbage.
 */
import t from 'tap'
import { FrameParser, Opcode, unmask, type FrameHeader } from '../../../src/websocket/frame-parser.js'
import { FrameObserver } from '../../../src/websocket/frame-observer.js'
import { ResponseEventReader } from '../../../src/websocket/response-events.js'
import { MAX_INFLATED_MESSAGE_BYTES } from '../../../src/websocket/message-inflater.js'
import { TextMessages } from '../../../src/websocket/text-messages.js'
import { randomChunks } from '../../support/mock-upstream.js'
import { deflateMessages, encodeFrame, type FrameSpec } from '../../support/raw-websocket.js'
import { responseEvents } from '../../support/websocket-upstream.js'

interface SeenFrame { opcode: number, fin: boolean, rsv1: boolean, payload: Buffer }

function parseAll (bytes: Buffer, seed: number): { frames: SeenFrame[], boundaries: number, parser: FrameParser } {
  const frames: SeenFrame[] = []
  let parts: Buffer[] = []
  let boundaries = 0
  const parser = new FrameParser({
    onFrameStart: () => { parts = [] },
    onFramePayload: (frame: FrameHeader, slice: Buffer, offset: number) => {
      parts.push(frame.maskKey === undefined ? Buffer.from(slice) : unmask(slice, frame.maskKey, offset))
    },
    onFrameEnd: (frame: FrameHeader) => {
      frames.push({ opcode: frame.opcode, fin: frame.fin, rsv1: frame.rsv1, payload: Buffer.concat(parts) })
    }
  })
  for (const chunk of randomChunks(bytes, seed, 9)) {
    parser.push(chunk)
    if (parser.atBoundary) boundaries++
  }
  return { frames, boundaries, parser }
}

t.test('frames are found whatever the chunking: every length encoding, masked or not, control frames in between', async (t) => {
  const specs: FrameSpec[] = [
    { opcode: Opcode.text, payload: '' },
    { opcode: Opcode.text, payload: 'short', masked: true },
    { opcode: Opcode.binary, payload: Buffer.alloc(125, 1) },
    { opcode: Opcode.binary, payload: Buffer.alloc(126, 2), masked: true },
    { opcode: Opcode.text, payload: Buffer.alloc(65_535, 3), fin: false, rsv1: true },
    { opcode: Opcode.ping, payload: 'ping' },
    { opcode: Opcode.continuation, payload: Buffer.alloc(65_536, 4), masked: true },
    { opcode: Opcode.close, payload: Buffer.from([0x03, 0xe8, 0x6f, 0x6b]) }
  ]
  const bytes = Buffer.concat(specs.map(encodeFrame))
  for (const seed of [1, 2, 3, 42, 1234]) {
    const { frames, parser } = parseAll(bytes, seed)
    t.equal(frames.length, specs.length, `seed ${seed}: every frame`)
    frames.forEach((frame, i) => {
      const spec = specs[i]!
      const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : spec.payload
      t.ok(frame.opcode === spec.opcode && frame.fin === (spec.fin ?? true) && frame.rsv1 === (spec.rsv1 ?? false) && frame.payload.equals(payload), `seed ${seed}: frame ${i}`)
    })
    t.ok(parser.atBoundary, 'between frames at the end')
  }
})

t.test('unmasking gives the payload back at any length, offset and alignment (words and bytes alike)', async (t) => {
  const key = Buffer.from([0x12, 0xa5, 0xff, 0x01])
  const plain = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 31 + 7) & 0xff))
  let checked = 0
  for (let length = 0; length <= 80; length++) {
    for (const start of [0, 1, 2, 3, 5]) {
      for (let offset = 0; offset < 4; offset++) {
        const part = plain.subarray(start, start + length)
        // Masked as a sender would: byte i of the payload with key byte (offset + i) & 3.
        const masked = Buffer.from(part.map((byte, i) => byte ^ key[(offset + i) & 3]!))
        const unaligned = Buffer.concat([Buffer.alloc(start), masked]).subarray(start)
        if (!unmask(unaligned, key, offset).equals(part)) t.fail(`length ${length}, start ${start}, offset ${offset}`)
        checked++
      }
    }
  }
  const long = Buffer.from(plain.map((byte, i) => byte ^ key[(2 + i) & 3]!))
  t.ok(unmask(long.subarray(1), key, 3).equals(plain.subarray(1)), 'a long slice starting mid-payload')
  t.equal(checked, 81 * 5 * 4)
})

t.test('a frame that breaks the rules stops the reading for good, and never throws', async (t) => {
  for (const bad of [
    Buffer.from([0x83, 0x00]), // reserved opcode
    Buffer.from([0x09, 0x00]), // fragmented ping
    Buffer.concat([Buffer.from([0x89, 0x7e, 0x00, 0x80]), Buffer.alloc(128)]), // ping longer than 125
    Buffer.from([0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]) // a length beyond 2^53
  ]) {
    const { frames, parser } = parseAll(Buffer.concat([encodeFrame({ opcode: Opcode.text, payload: 'ok' }), bad, encodeFrame({ opcode: Opcode.text, payload: 'unseen' })]), 7)
    t.equal(frames.length, 1)
    t.ok(parser.failed)
    t.notOk(parser.atBoundary, 'no boundary is claimed once lost')
  }
})

t.test('the first Close frame\'s code is read, masked or split', async (t) => {
  for (const masked of [false, true]) {
    const codes: number[] = []
    const observer = new FrameObserver({ onClose: (code) => codes.push(code) })
    const close = encodeFrame({ opcode: Opcode.close, payload: Buffer.from([0x0f, 0xa1, 0x62, 0x79, 0x65]), masked })
    for (const chunk of randomChunks(Buffer.concat([close, encodeFrame({ opcode: Opcode.close, payload: Buffer.from([0x03, 0xe8]), masked })]), 3, 2)) observer.push(chunk)
    t.same(codes, [4001], masked ? 'masked' : 'plain')
    t.equal(observer.closeCode, 4001)
  }
  const empty = new FrameObserver({})
  empty.push(encodeFrame({ opcode: Opcode.close, payload: '' }))
  t.equal(empty.closeCode, 1005, 'a Close without a code reports 1005')
})

async function readMessages (frames: Buffer, deflate: { noContextTakeover: boolean } | undefined, count: number, maxMessageBytes?: number): Promise<Array<[string, boolean]>> {
  const messages: Array<[string, boolean]> = []
  return await new Promise((resolve, reject) => {
    const reader = new TextMessages({
      deflate,
      maxMessageBytes,
      onMessage: (text, complete) => {
        messages.push([text.toString('utf8'), complete])
        if (messages.length === count) resolve(messages)
      },
      onLost: () => reject(new Error('lost'))
    })
    const observer = new FrameObserver({ messages: reader })
    for (const chunk of randomChunks(frames, 99, 13)) observer.push(chunk)
  })
}

t.test('text messages are reassembled and inflated in order, with or without context takeover', async (t) => {
  const texts = responseEvents('resp_inflate', 'the same words again and again, the same words')
  for (const contextTakeover of [true, false]) {
    const compressed = await deflateMessages(texts, contextTakeover)
    const frames: Buffer[] = []
    compressed.forEach((data, i) => {
      if (i === 2) {
        // A fragmented compressed message: RSV1 only on its first frame, a ping in between.
        frames.push(encodeFrame({ opcode: Opcode.text, payload: data.subarray(0, 5), fin: false, rsv1: true }))
        frames.push(encodeFrame({ opcode: Opcode.ping, payload: '' }))
        frames.push(encodeFrame({ opcode: Opcode.continuation, payload: data.subarray(5) }))
      } else {
        frames.push(encodeFrame({ opcode: Opcode.text, payload: data, rsv1: true }))
      }
      // Uncompressed messages may be mixed in; they keep their place.
      if (i === 4) frames.push(encodeFrame({ opcode: Opcode.text, payload: '{"type":"plain"}' }))
      if (i === 5) frames.push(encodeFrame({ opcode: Opcode.binary, payload: Buffer.from([1, 2, 3]) }))
    })
    const expected = [...texts.slice(0, 5), '{"type":"plain"}', ...texts.slice(5)]
    const messages = await readMessages(Buffer.concat(frames), { noContextTakeover: !contextTakeover }, expected.length)
    t.same(messages.map(([text]) => text), expected, contextTakeover ? 'one window across messages' : 'a fresh window per message')
    t.ok(messages.every(([, complete]) => complete))
  }
})

t.test('a message longer than the limit is handed on cut, marked incomplete', async (t) => {
  const long = JSON.stringify({ type: 'response.completed', response: { id: 'resp_long', filler: 'x'.repeat(5000) } })
  const plain = await readMessages(encodeFrame({ opcode: Opcode.text, payload: long }), undefined, 1, 1000)
  t.same(plain, [[long.slice(0, 1000), false]])
  const [compressed] = await deflateMessages([long], true)
  const inflated = await readMessages(encodeFrame({ opcode: Opcode.text, payload: compressed!, rsv1: true }), { noContextTakeover: false }, 1, 1000)
  t.same(inflated, [[long.slice(0, 1000), false]])
})

t.test('compressed frames without an agreed compression, or corrupt ones, end the reading without throwing', async (t) => {
  let lost = 0
  const reader = new TextMessages({ deflate: undefined, onMessage: () => t.fail('nothing readable'), onLost: () => { lost++ } })
  new FrameObserver({ messages: reader }).push(encodeFrame({ opcode: Opcode.text, payload: 'x', rsv1: true }))
  t.equal(lost, 1)
  const corrupt = await new Promise<boolean>((resolve) => {
    const inflating = new TextMessages({ deflate: { noContextTakeover: false }, onMessage: () => resolve(false), onLost: () => resolve(true) })
    new FrameObserver({ messages: inflating }).push(encodeFrame({ opcode: Opcode.text, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]), rsv1: true }))
  })
  t.ok(corrupt)
})

t.test('regression: a compressed binary message keeps the inflater\'s window right for the text messages after it', async (t) => {
  const first = JSON.stringify({ type: 'response.created', response: { id: 'resp_first' } })
  const second = JSON.stringify({ type: 'response.created', response: { id: 'resp_other' } })
  // The binary message holds the second's very bytes, so the second compresses to a reference
  // back into it: an inflater that skipped it would copy the first's bytes instead.
  const [a, binary, b] = await deflateMessages([first, second, second], true)
  const frames = Buffer.concat([
    encodeFrame({ opcode: Opcode.text, payload: a!, rsv1: true }),
    encodeFrame({ opcode: Opcode.binary, payload: binary!, rsv1: true }),
    encodeFrame({ opcode: Opcode.text, payload: b!, rsv1: true })
  ])
  t.same(await readMessages(frames, { noContextTakeover: false }, 2), [[first, true], [second, true]], 'the binary one is handed on to nobody')
})

t.test('regression: a compressed message that inflates past MAX_INFLATED_MESSAGE_BYTES ends the reading instead of inflating on', async (t) => {
  const [bomb] = await deflateMessages([' '.repeat(MAX_INFLATED_MESSAGE_BYTES + 1)], true)
  const outcome = await new Promise<string>((resolve) => {
    const reader = new TextMessages({ deflate: { noContextTakeover: false }, onMessage: () => resolve('handed on'), onLost: () => resolve('lost') })
    new FrameObserver({ messages: reader }).push(encodeFrame({ opcode: Opcode.text, payload: bomb!, rsv1: true }))
  })
  t.equal(outcome, 'lost')
})

t.test('regression: plain messages piling up behind a compressed one while it inflates end the reading past the bound', async (t) => {
  // ws sends messages under its threshold plain: an upstream mixing both could queue plain
  // messages behind a slow inflate without limit, since only compressed bytes were counted.
  const [compressed] = await deflateMessages(['{"type":"response.created"}'], true)
  const plain = (n: number): Buffer => encodeFrame({ opcode: Opcode.text, payload: `{"type":"response.output_text.delta","delta":"${String(n).repeat(20_000)}"}` })
  const read = async (plainCount: number): Promise<{ outcome: string, messages: number }> => {
    let messages = 0
    const outcome = await new Promise<string>((resolve) => {
      const reader = new TextMessages({
        deflate: { noContextTakeover: false },
        maxQueuedBytes: 64 * 1024,
        onMessage: () => { if (++messages === plainCount + 1) resolve('all handed on') },
        onLost: () => resolve('lost')
      })
      // In one push: the compressed message is still inflating when the plain ones arrive.
      new FrameObserver({ messages: reader }).push(Buffer.concat([encodeFrame({ opcode: Opcode.text, payload: compressed!, rsv1: true }), ...Array.from({ length: plainCount }, (_, i) => plain(i % 10))]))
    })
    return { outcome, messages }
  }
  t.same(await read(3), { outcome: 'all handed on', messages: 4 }, '60 KB waiting: within the bound')
  t.same(await read(5), { outcome: 'lost', messages: 0 }, '100 KB waiting: past it, reading stops and what waited is dropped')
})

t.test('Responses events: types told apart from their first bytes, ids and usage read from the few that carry them', async (t) => {
  const seen: { types: Array<string | undefined>, ids: string[], usage: unknown[] } = { types: [], ids: [], usage: [] }
  const reader = new ResponseEventReader({
    onEvent: (type) => seen.types.push(type),
    onResponseId: (id) => seen.ids.push(id),
    onResponseDone: (usage) => seen.usage.push(usage)
  })
  for (const event of responseEvents('resp_a', 'hi')) reader.read(Buffer.from(event), true)
  t.same(seen.ids, ['resp_a'], 'the id is learned once, from response.created')
  t.same(seen.usage, [{ input: 120, cached: 100, output: 7, reasoning: 3 }])
  t.equal(seen.types.at(-1), 'response.completed')

  // response.created cut short: the id comes from response.completed instead.
  reader.read(Buffer.from('{"type":"response.created","response":{"id":"resp_b"'), false)
  reader.read(Buffer.from(JSON.stringify({ type: 'response.completed', response: { id: 'resp_b', usage: null } })), true)
  // type not the first key: parsed whole.
  reader.read(Buffer.from(JSON.stringify({ response: { id: 'resp_c' }, type: 'response.created' })), true)
  reader.read(Buffer.from('not json'), true)
  reader.read(Buffer.from('{"type":"error","error":{"message":"x"}}'), true)
  t.same(seen.ids, ['resp_a', 'resp_b', 'resp_c'])
  t.same(seen.types.slice(-5), ['response.created', 'response.completed', 'response.created', undefined, 'error'])
})

t.test('regression: the usage of a response.completed longer than the message limit is read from its end, compressed or not', async (t) => {
  const usage = { input_tokens: 11, input_tokens_details: { cached_tokens: 3 }, output_tokens: 7, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 18 }
  const output = [{ type: 'message', content: [{ type: 'output_text', text: 'a long answer, '.repeat(20_000) }] }]
  const long = JSON.stringify({ type: 'response.completed', response: { id: 'resp_long', output, usage, metadata: { note: 'after the usage' } }, sequence_number: 9 })
  for (const compressed of [false, true]) {
    const payload = compressed ? (await deflateMessages([long], true))[0]! : Buffer.from(long)
    const seen: unknown[] = []
    await new Promise<void>((resolve) => {
      const events = new ResponseEventReader({ onEvent: () => resolve(), onResponseId: () => {}, onResponseDone: (read) => seen.push(read) })
      const reader = new TextMessages({
        deflate: compressed ? { noContextTakeover: false } : undefined,
        maxMessageBytes: 1000,
        onMessage: (text, complete, tail) => events.read(text, complete, tail),
        onLost: () => resolve()
      })
      const observer = new FrameObserver({ messages: reader })
      for (const chunk of randomChunks(encodeFrame({ opcode: Opcode.text, payload, rsv1: compressed, masked: !compressed }), 5, 70_000)) observer.push(chunk)
    })
    t.same(seen, [{ input: 11, cached: 3, output: 7, reasoning: 2 }], compressed ? 'compressed' : 'plain (masked, in pieces)')
  }
})

t.test('messages still waiting for the inflater when the connection closes are all handed on (soak regression)', async (t) => {
  // Under load the inflater runs behind the relay; the connection's close used to discard the
  // queue, and with it the final events' usage and response ids.
  const texts = responseEvents('resp_closing', 'words that compress, words that compress')
  const compressed = await deflateMessages(texts, true)
  const frames = Buffer.concat(compressed.map((data) => encodeFrame({ opcode: Opcode.text, payload: data, rsv1: true })))
  const messages: string[] = []
  let lost = false
  const done = new Promise<void>((resolve) => {
    const reader = new TextMessages({
      deflate: { noContextTakeover: false },
      onMessage: (text) => {
        messages.push(text.toString('utf8'))
        if (messages.length === texts.length) resolve()
      },
      onLost: () => { lost = true; resolve() }
    })
    new FrameObserver({ messages: reader }).push(frames)
    // Every message is queued and the first is inflating: the connection closes now.
    reader.finish()
    t.notOk(reader.settled, 'the queue was not empty when the connection closed')
  })
  await done
  t.notOk(lost)
  t.same(messages, texts, 'every queued message was inflated and handed on, in order')
})

t.test('regression: a response.failed carrying usage counts it, as on HTTP (whole, or read from its end when long)', async (t) => {
  const usage = { input_tokens: 40, input_tokens_details: { cached_tokens: 8 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 1 }, total_tokens: 45 }
  const seen: { ids: string[], usage: unknown[] } = { ids: [], usage: [] }
  const reader = new ResponseEventReader({ onEvent: () => {}, onResponseId: (id) => seen.ids.push(id), onResponseDone: (read) => seen.usage.push(read) })
  const failed = JSON.stringify({ type: 'response.failed', response: { id: 'resp_failed', status: 'failed', error: { code: 'server_error' }, usage } })
  // Its response.created was not read (cut short): the id comes from the final event, as from response.completed.
  reader.read(Buffer.from('{"type":"response.created","response":{"id":"resp_failed"'), false)
  reader.read(Buffer.from(failed), true)
  reader.read(Buffer.from(failed.slice(0, 30)), false, Buffer.from(failed.slice(30)))
  t.same(seen.usage, [{ input: 40, cached: 8, output: 5, reasoning: 1 }, { input: 40, cached: 8, output: 5, reasoning: 1 }])
  t.same(seen.ids, ['resp_failed'])
})

t.test('regression: every response a WebSocket ends is done once, with no usage when it ended without (an error), as a failed HTTP call counts', async (t) => {
  const usage = { input_tokens: 10, output_tokens: 2 }
  const read = (events: Array<Record<string, unknown> | string>): unknown[] => {
    const done: unknown[] = []
    const reader = new ResponseEventReader({ onEvent: () => {}, onResponseId: () => {}, onResponseDone: (tokens) => done.push(tokens ?? 'none') })
    for (const event of events) reader.read(Buffer.from(typeof event === 'string' ? event : JSON.stringify(event)), true)
    return done
  }
  const error = { type: 'error', error: { type: 'invalid_request_error', code: 'invalid_value', message: 'bad' } }
  const tokens = { input: 10, cached: 0, output: 2, reasoning: 0 }
  t.same(read([error]), ['none'], 'an error alone (a request refused before any response) is one, without usage')
  t.same(read([{ type: 'response.created', response: { id: 'r1' } }, { type: 'response.failed', response: { id: 'r1', status: 'failed' } }]), ['none'], 'a response.failed without usage')
  t.same(read([{ type: 'response.completed', response: { id: 'r1', usage } }, error]), [tokens], 'an error right after a final event is that response\'s, not one more')
  t.same(read([error, error]), ['none', 'none'], 'two errors in a row are two')
  t.same(read([
    { type: 'response.created', response: { id: 'r1' } }, { type: 'response.output_text.delta', delta: 'x' }, { type: 'response.completed', response: { id: 'r1', usage } },
    { type: 'response.created', response: { id: 'r2' } }, error
  ]), [tokens, 'none'], 'a completed response, then one that ended in an error')
  t.same(read(['{"type":"response.completed", cut']), ['none'], 'a final event that could not be read ends its response without usage')
})

/** Reads an upstream's frames, pushed in `chunks`, as the tunnel does: its events' types, ids and usage, and its Close code. */
async function readUpstream (chunks: Buffer[], deflate: boolean, events: number): Promise<string> {
  const seen: unknown[] = []
  let closeCode: number | undefined
  let observer!: FrameObserver
  await new Promise<void>((resolve) => {
    const reader = new ResponseEventReader({ onEvent: (type) => { seen.push(type); if (seen.filter((x) => typeof x !== 'object').length === events) resolve() }, onResponseId: (id) => seen.push({ id }), onResponseDone: (usage) => seen.push(usage) })
    const messages = new TextMessages({ deflate: deflate ? { noContextTakeover: false } : undefined, onMessage: (text, complete, tail) => reader.read(text, complete, tail), onLost: () => resolve() })
    observer = new FrameObserver({ messages, onClose: (code) => { closeCode = code } })
    for (const chunk of chunks) observer.push(chunk)
  })
  return JSON.stringify({ seen, closeCode, atBoundary: observer.atBoundary })
}

t.test('an upstream\'s events read alike when its bytes are cut at every possible point, or come byte by byte', async (t) => {
  const texts = responseEvents('resp_split', 'cut anywhere')
  for (const deflate of [false, true]) {
    const payloads = deflate ? await deflateMessages(texts, true) : texts.map((text) => Buffer.from(text))
    const frames = payloads.flatMap((payload, i) => i > 0 && i < payloads.length - 1
      ? [encodeFrame({ opcode: Opcode.text, payload, rsv1: deflate })]
      : [ // the first and last messages fragmented, with control frames between their fragments
          encodeFrame({ opcode: Opcode.text, payload: payload.subarray(0, 3), fin: false, rsv1: deflate }),
          encodeFrame({ opcode: Opcode.ping, payload: 'p' }),
          encodeFrame({ opcode: Opcode.continuation, payload: payload.subarray(3, 9), fin: false }),
          encodeFrame({ opcode: Opcode.pong, payload: '' }),
          encodeFrame({ opcode: Opcode.continuation, payload: payload.subarray(9) })
        ])
    const bytes = Buffer.concat([...frames, encodeFrame({ opcode: Opcode.close, payload: Buffer.from([0x03, 0xe8, 0x62]) })])
    const whole = await readUpstream([bytes], deflate, texts.length)
    t.match(whole, /"resp_split".*"input":120.*"closeCode":1000,"atBoundary":true/, 'read whole')
    const differing: number[] = []
    for (let at = 1; at < bytes.length; at++) {
      if (await readUpstream([bytes.subarray(0, at), bytes.subarray(at)], deflate, texts.length) !== whole) differing.push(at)
    }
    t.same(differing, [], `${deflate ? 'compressed' : 'plain'}: cut at each of ${bytes.length - 1} points`)
    t.equal(await readUpstream([...bytes].map((byte) => Buffer.from([byte])), deflate, texts.length), whole, 'byte by byte')
  }
})
