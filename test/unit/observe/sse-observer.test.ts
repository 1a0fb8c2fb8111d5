/**
 * The SSE observer sees the same events however the stream is cut into chunks, stays
 * bounded and silent on garbage, and lets the gateway learn every streamed response's id.
 */
import t from 'tap'
import { ResponseObserver, type ResponseFacts } from '../../../src/observe/response-observer.js'
import { SseObserver } from '../../../src/observe/sse-observer.js'
import { randomChunks, responseStream, sseEvent } from '../../support/mock-upstream.js'
import { xorshift32 } from '../../support/random.js'

type Seen = Array<[string | undefined, string]>

const LINEAGE_EVENTS = new Set(['response.created', 'response.completed'])

/** Feeds `chunks` to a fresh observer and returns what it reported, in order. */
function observe (chunks: Buffer[], options: { wants?: (type: string) => boolean, types?: readonly string[], maxEventBytes?: number } = {}): Seen {
  const seen: Seen = []
  const observer = new SseObserver({
    ...(options.types !== undefined ? { types: options.types } : { wants: options.wants ?? ((type) => LINEAGE_EVENTS.has(type)) }),
    onEvent: (type, data) => { seen.push([type, data]) },
    ...(options.maxEventBytes === undefined ? {} : { maxEventBytes: options.maxEventBytes })
  })
  for (const chunk of chunks) observer.push(chunk)
  return seen
}

interface Chunking { label: string, chunks: Buffer[] }

/** Chunkings under test: fixed sizes (1 byte included) and random cuts of the given maximum sizes, one seed each. */
function chunkings (bytes: Buffer, seeds: number, { fixed = [1, 2, 3, 5, 8, 13, 4096], maxima = [2, 7, 17, 64, 333, 4096, 65_536] } = {}): Chunking[] {
  const out = fixed.map((size) => ({ label: `${size}-byte chunks`, chunks: fixedChunks(bytes, size) }))
  for (let seed = 1; seed <= seeds; seed++) {
    const max = maxima[seed % maxima.length]!
    out.push({ label: `seed ${seed}, chunks up to ${max}`, chunks: randomChunks(bytes, seed, max) })
  }
  return out
}

function fixedChunks (bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size))
  return chunks
}

/** The ids a ResponseObserver learns from an SSE answer delivered in `chunks`. */
function learnedIds (chunks: Buffer[], contentType = 'text/event-stream; charset=utf-8'): string[] {
  const ids: string[] = []
  const observer = new ResponseObserver(factsTo(ids))
  observer.onResponseStart(200, ['Content-Type', contentType])
  for (const chunk of chunks) observer.onChunk(chunk)
  observer.onResponseEnd()
  return ids
}

const MULTI_BYTE = 'Grüße, 世界! Ünïcödé 日本語のテキスト 🎉🚀 — “quotes” «guillemets» '

/** Real Responses streams, and the same streams dressed the ways servers and proxies dress them. */
function streams (): Array<{ name: string, id: string, bytes: Buffer, seeds: number, fixed?: number[], maxima?: number[] }> {
  const plain = responseStream('resp_plain', 'Hello there. "Quoted" and \\ backslashed.')
  const multiByte = responseStream('resp_multibyte', MULTI_BYTE.repeat(40))
  const crlf = multiByte.replaceAll('resp_multibyte', 'resp_crlf').replaceAll('\n', '\r\n')
  const created = { type: 'response.created', sequence_number: 0, response: { id: 'resp_dressed', object: 'response', status: 'in_progress', instructions: 'line one\nline two', output: [] } }
  const dressed = [
    ': keepalive\n\n',
    'retry: 3000\n',
    'id: 1\n',
    'event: response.created\n',
    // One event over several data lines: pretty-printed JSON, joined back with "\n".
    JSON.stringify(created, null, 2).split('\n').map((line) => `data: ${line}\n`).join(''),
    '\n',
    ': keepalive\n\n',
    ':another comment without a space\n\n',
    sseEvent({ type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', output_index: 0, content_index: 0, delta: MULTI_BYTE }),
    'data: {"type":"error-less untyped event","n":1}\n\n', // no event: line: offered too
    'event: response.completed\ndata:{"type":"response.completed","response":{"id":"resp_dressed","status":"completed"}}\n\n'
  ].join('')
  const hugeText = MULTI_BYTE.repeat(Math.ceil(2 * 1024 * 1024 / Buffer.byteLength(MULTI_BYTE)))
  // A 2 MB delta (unwanted) and a completed event that carries the text again (over the 1 MB default).
  const huge = responseStream('resp_huge', hugeText)
  const hugeCrlf = [
    sseEvent({ type: 'response.created', sequence_number: 0, response: { id: 'resp_huge_crlf', object: 'response', output: [] } }),
    sseEvent({ type: 'response.output_text.delta', sequence_number: 1, delta: hugeText }),
    ': keepalive\n\n',
    sseEvent({ type: 'response.completed', sequence_number: 2, response: { id: 'resp_huge_crlf', object: 'response', status: 'completed', output: [] } })
  ].join('').replaceAll('\n', '\r\n')
  // Tiny chunks of the megabyte streams cost seconds each: a few cuts of each size class do.
  const small = { seeds: 150 }
  return [
    { name: 'a plain stream', id: 'resp_plain', bytes: Buffer.from(plain), ...small },
    { name: 'multi-byte text', id: 'resp_multibyte', bytes: Buffer.from(multiByte), ...small },
    { name: 'CRLF line endings', id: 'resp_crlf', bytes: Buffer.from(crlf), ...small },
    { name: 'comments, id/retry lines, multi-line data, an untyped event', id: 'resp_dressed', bytes: Buffer.from(dressed), ...small },
    { name: 'a 2 MB delta, the text repeated in later events (13 MB)', id: 'resp_huge', bytes: Buffer.from(huge), seeds: 3, fixed: [], maxima: [333, 4096, 65_536] },
    { name: 'a 2 MB delta with CRLF and keepalives', id: 'resp_huge_crlf', bytes: Buffer.from(hugeCrlf), seeds: 3, fixed: [1], maxima: [17, 4096, 65_536] }
  ]
}

t.test('however a real stream is chunked, the observer reports what it reports for the whole stream', async (t) => {
  for (const { name, id, bytes, seeds, fixed, maxima } of streams()) {
    const whole = observe([bytes])
    t.ok(whole.some(([type, data]) => type === 'response.created' && (JSON.parse(data) as { response: { id: string } }).response.id === id),
      `${name}: response.created is seen in one chunk`)
    t.ok(whole.every(([type]) => type === undefined || LINEAGE_EVENTS.has(type)), `${name}: only wanted (or untyped) events`)

    const mismatches: string[] = []
    for (const { label, chunks } of chunkings(bytes, seeds, { ...(fixed === undefined ? {} : { fixed }), ...(maxima === undefined ? {} : { maxima }) })) {
      const seen = observe(chunks)
      if (JSON.stringify(seen) !== JSON.stringify(whole)) mismatches.push(label)
      // The byte-matched type list (the relay's mode) must see exactly what the predicate sees.
      if (JSON.stringify(observe(chunks, { types: [...LINEAGE_EVENTS] })) !== JSON.stringify(whole)) mismatches.push(`${label} (types)`)
      const ids = learnedIds(chunks)
      if (ids.length === 0 || ids.some((learned) => learned !== id)) mismatches.push(`${label}: ResponseObserver learned ${JSON.stringify(ids)}`)
    }
    t.same(mismatches, [], `${name}: every chunking agrees with the whole stream, and the id is learned`)
  }
})

t.test('the whole-stream report is what the stream says', async (t) => {
  const [, , , dressed] = streams()
  const seen = observe([dressed!.bytes])
  t.same(seen.map(([type]) => type), ['response.created', undefined, 'response.completed'])
  t.same(JSON.parse(seen[0]![1]), { type: 'response.created', sequence_number: 0, response: { id: 'resp_dressed', object: 'response', status: 'in_progress', instructions: 'line one\nline two', output: [] } },
    'multi-line data joined with newlines')
  t.equal(seen[2]![1], '{"type":"response.completed","response":{"id":"resp_dressed","status":"completed"}}', '"data:" without a space')

  const [, multiByte] = streams()
  const completed = observe([multiByte!.bytes]).find(([type]) => type === 'response.completed')!
  t.equal((JSON.parse(completed[1]) as { response: { output: Array<{ content: Array<{ text: string }> }> } }).response.output[0]!.content[0]!.text,
    MULTI_BYTE.repeat(40), 'multi-byte text survives intact')
})

t.test('generated streams with lines around the size limit: every chunking agrees', async (t) => {
  // Small limit, lines of every length around it, several event lines per event, data before
  // the event line, comments, CR/LF: where a chunk boundary falls must never change the report.
  const max = 48
  const random = xorshift32(0x2545f491)
  const next = (n: number): number => random() % n
  const types = ['response.created', 'response.completed', 'response.output_text.delta', 'response.in_progress']
  const mismatches: string[] = []
  for (let n = 0; n < 300; n++) {
    const eol = next(3) === 0 ? '\r\n' : '\n'
    let text = ''
    for (let line = 0, lines = 5 + next(40); line < lines; line++) {
      const kind = next(10)
      const payload = 'x'.repeat(Math.max(0, max - 12 + next(24)))
      if (kind < 3) text += `event: ${types[next(types.length)]!}${eol}`
      else if (kind < 7) text += `data:${next(2) === 0 ? ' ' : ''}${payload}${eol}`
      else if (kind < 8) text += `: ${payload}${eol}`
      else if (kind < 9) text += `event: ${'y'.repeat(max - 10 + next(24))}${eol}`
      else text += eol
    }
    const bytes = Buffer.from(text + eol + eol)
    const options = { wants: (type: string) => type === 'response.created' || type === 'response.completed', maxEventBytes: max }
    const whole = JSON.stringify(observe([bytes], options))
    for (const { label, chunks } of chunkings(bytes, 12)) {
      if (JSON.stringify(observe(chunks, options)) !== whole) mismatches.push(`stream ${n}, ${label}`)
    }
  }
  t.same(mismatches.slice(0, 20), [], 'no chunking disagrees')
})

t.test('an event of exactly maxEventBytes is seen, one byte more is skipped, in any chunking', async (t) => {
  // Regression: a line arriving in pieces was measured with its "data: " prefix and CR, so an
  // event at the limit was seen when it came in one chunk and skipped when it came in several.
  const max = 100
  for (const [eol, label] of [['\n', 'LF'], ['\r\n', 'CRLF']] as const) {
    for (const [size, expected] of [[max, 1], [max + 1, 0]] as const) {
      const payload = 'p'.repeat(size)
      const bytes = Buffer.from(`event: response.created${eol}data: ${payload}${eol}${eol}event: response.completed${eol}data: after${eol}${eol}`)
      for (const { label: chunking, chunks } of [{ label: 'one chunk', chunks: [bytes] }, ...chunkings(bytes, 20)]) {
        const seen = observe(chunks, { maxEventBytes: max })
        t.same(seen, [...(expected === 1 ? [['response.created', payload]] : []), ['response.completed', 'after']],
          `${label}, ${size} bytes, ${chunking}`)
      }
    }
  }
})

t.test('data read before a late event line of an unwanted type is not reported', async (t) => {
  const bytes = Buffer.from('data: early\nevent: response.output_text.delta\ndata: late\n\nevent: response.created\ndata: x\n\n')
  for (const { label, chunks } of [{ label: 'one chunk', chunks: [bytes] }, ...chunkings(bytes, 10)]) {
    t.same(observe(chunks), [['response.created', 'x']], label)
  }
})

t.test('an event larger than maxEventBytes is skipped, and later events are still seen', async (t) => {
  const max = 1000
  const big = 'B'.repeat(5000)
  const bytes = Buffer.from([
    sseEvent({ type: 'response.created', response: { id: 'resp_1' } }),
    sseEvent({ type: 'response.completed', response: { id: 'resp_1', text: big } }), // one long line
    'event: response.completed\n' + Array.from({ length: 50 }, () => `data: ${'m'.repeat(40)}\n`).join('') + '\n', // many short lines
    `event: response.created\n: ${'c'.repeat(3000)}\ndata: {"small":true}\n\n`, // a huge comment spoils its event
    sseEvent({ type: 'response.created', response: { id: 'resp_2' } }),
    sseEvent({ type: 'response.completed', response: { id: 'resp_2' } })
  ].join(''))
  const expected = ['resp_1', 'resp_2', 'resp_2']
  for (const { label, chunks } of [{ label: 'one chunk', chunks: [bytes] }, ...chunkings(bytes, 40)]) {
    const seen = observe(chunks, { maxEventBytes: max })
    t.same(seen.map(([, data]) => (JSON.parse(data) as { response: { id: string } }).response.id), expected, label)
  }
})

t.test('random binary garbage never throws, and a stream after it is still read', async (t) => {
  const next = xorshift32(0xdeadbeef)
  const stream = Buffer.from(responseStream('resp_after_garbage', 'ok'))
  const expected = observe([stream])
  for (let n = 0; n < 40; n++) {
    const garbage = Buffer.alloc(1 + (next() % 50_000))
    for (let i = 0; i < garbage.length; i++) garbage[i] = next() & 0xff
    // Garbage made of SSE's own characters is the nastiest kind.
    if (n % 2 === 1) for (let i = 0; i < garbage.length; i++) garbage[i] = Buffer.from('data: event:\r\n\n:x')[garbage[i]! % 17]!
    const seen: Seen = []
    const observer = new SseObserver({ wants: (type) => LINEAGE_EVENTS.has(type), onEvent: (type, data) => { seen.push([type, data]) }, maxEventBytes: 4096 })
    for (const chunk of randomChunks(garbage, n + 1, 1 + (n * 97) % 8192)) observer.push(chunk) // throwing fails the test
    const before = seen.length
    for (const chunk of randomChunks(Buffer.concat([Buffer.from('\n\n'), stream]), n + 7, 64)) observer.push(chunk)
    t.same(seen.slice(before), expected, `garbage ${n} (${garbage.length} bytes): the stream after it is read`)
    t.same(learnedIds(randomChunks(garbage, n + 3, 4096)), [], `garbage ${n}: no id learned, nothing thrown`)
  }
})

t.test('after stop() nothing more is reported', async (t) => {
  const bytes = Buffer.from(responseStream('resp_1', 'hi') + responseStream('resp_2', 'again'))

  const seen: Seen = []
  const observer = new SseObserver({ wants: (type) => LINEAGE_EVENTS.has(type), onEvent: (type, data) => { seen.push([type, data]) } })
  const chunks = randomChunks(bytes, 5, 40)
  let stoppedAt = -1
  for (let i = 0; i < chunks.length; i++) {
    observer.push(chunks[i]!)
    if (stoppedAt === -1 && seen.length === 1) {
      observer.stop()
      stoppedAt = i
    }
  }
  t.ok(stoppedAt >= 0 && stoppedAt < chunks.length - 1, 'stopped with chunks still to come')
  t.equal(seen.length, 1, 'nothing after stop()')

  // Stopping from inside the callback, in the middle of one big chunk.
  const fromCallback: Seen = []
  const selfStopping = new SseObserver({
    wants: (type) => LINEAGE_EVENTS.has(type),
    onEvent: (type, data) => {
      fromCallback.push([type, data])
      selfStopping.stop()
    }
  })
  selfStopping.push(bytes)
  selfStopping.push(bytes)
  t.equal(fromCallback.length, 1, 'stop() inside onEvent ends the observation at once')

  // A callback that throws ends the observation without the error reaching the relay.
  let calls = 0
  const throwing = new SseObserver({ wants: () => true, onEvent: () => { calls++; throw new Error('observer bug') } })
  t.doesNotThrow(() => { throwing.push(bytes); throwing.push(bytes) })
  t.equal(calls, 1, 'a throwing callback is not called again')
})

t.test('ResponseObserver learns the id of a JSON answer however it is chunked, and nothing from others', async (t) => {
  const body = Buffer.from(JSON.stringify({ id: 'resp_json', object: 'response', status: 'completed', output: [{ type: 'message', content: [{ type: 'output_text', text: MULTI_BYTE }] }] }))
  for (const { label, chunks } of chunkings(body, 30)) {
    const ids: string[] = []
    const observer = new ResponseObserver(factsTo(ids))
    observer.onResponseStart(200, ['content-type', 'application/json'])
    for (const chunk of chunks) observer.onChunk(chunk)
    observer.onResponseEnd()
    if (ids.length === 0 || ids.some((id) => id !== 'resp_json')) t.fail(`${label}: learned ${JSON.stringify(ids)}`)
  }

  const sse = Buffer.from(responseStream('resp_not_learned', 'x'))
  const silent = (status: number, headers: string[], bytes: Buffer): string[] => {
    const ids: string[] = []
    const observer = new ResponseObserver(factsTo(ids))
    observer.onResponseStart(status, headers)
    observer.onChunk(bytes)
    observer.onResponseEnd()
    return ids
  }
  t.same(silent(500, ['content-type', 'text/event-stream'], sse), [], 'not from an error status')
  t.same(silent(200, ['content-type', 'text/event-stream', 'content-encoding', 'gzip'], sse), [], 'not from a compressed body')
  t.same(silent(200, ['content-type', 'text/plain'], sse), [], 'not from another content type')
  t.same(silent(200, ['content-type', 'application/json'], Buffer.from('{"id":"file_1","object":"file"}')), [], 'not from another kind of object')
  t.same(silent(200, ['content-type', 'application/json'], Buffer.from('{"id":"resp_trunc')), [], 'not from broken JSON')
})

/** Facts that keep the response ids learned and drop the rest. */
function factsTo (ids: string[]): ResponseFacts {
  return { onResponseId: (id) => ids.push(id), onUsage: () => {}, holdUsage: () => {}, releaseUsage: () => {} }
}

t.test('regression: a content-encoding named like an Object property is an unknown coding, passed unread', async (t) => {
  // `in` found `__proto__` and `constructor` on the coding table's prototype: the first threw
  // into the relay, the second "inflated" with Object(), which never calls back, so the usage
  // it held was never released.
  for (const coding of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    const ids: string[] = []
    let held = 0
    const observer = new ResponseObserver({ onResponseId: (id) => ids.push(id), onUsage: () => {}, holdUsage: () => { held++ }, releaseUsage: () => { held-- } })
    t.doesNotThrow(() => {
      observer.onResponseStart(200, ['content-type', 'application/json', 'content-encoding', coding])
      observer.onChunk(Buffer.from('{"id":"resp_odd","object":"response","status":"completed"}'))
      observer.onResponseEnd()
    }, `content-encoding: ${coding} does not throw`)
    t.same(ids, [], `${coding}: nothing learned from a body in a coding it cannot read`)
    t.equal(held, 0, `${coding}: no usage left held`)
  }
})

t.test('regression: a final event over the 16 MiB copy limit still has its usage counted, once, read from its end', async (t) => {
  // A response whose output repeats megabytes (generated images come back as base64 in
  // response.completed): the event is too long to copy whole, and its usage sat at its end.
  const image = 'iVBORw0KGgo'.repeat(Math.ceil(17 * 1024 * 1024 / 11))
  const usage = { input_tokens: 4000, input_tokens_details: { cached_tokens: 3072 }, output_tokens: 6000, output_tokens_details: { reasoning_tokens: 64 }, total_tokens: 10000 }
  const response = { id: 'resp_images', object: 'response', status: 'completed', output: [{ type: 'image_generation_call', id: 'ig_1', status: 'completed', result: image }] }
  const stream = Buffer.from([
    sseEvent({ type: 'response.created', sequence_number: 0, response: { id: 'resp_images', object: 'response', status: 'in_progress', output: [] } }),
    sseEvent({ type: 'response.completed', sequence_number: 1, response: { ...response, usage, user: null, metadata: { k: 'v' } } })
  ].join(''))
  const expected = [{ input: 4000, cached: 3072, output: 6000, reasoning: 64 }]
  const chunkings: Chunking[] = [
    { label: 'one chunk', chunks: [stream] },
    { label: '64 KiB chunks', chunks: fixedChunks(stream, 65_536) },
    { label: 'random chunks up to 100 kB', chunks: randomChunks(stream, 3, 100_000) },
    { label: 'CRLF, 16 KiB chunks', chunks: fixedChunks(Buffer.from(stream.toString('latin1').replaceAll('\n', '\r\n'), 'latin1'), 16_384) }
  ]
  for (const { label, chunks } of chunkings) {
    const usages: unknown[] = []
    const ids: string[] = []
    const observer = new ResponseObserver({ onResponseId: (id) => ids.push(id), onUsage: (u) => usages.push(u), holdUsage: () => {}, releaseUsage: () => {} })
    observer.onResponseStart(200, ['content-type', 'text/event-stream'])
    for (const chunk of chunks) observer.onChunk(chunk)
    observer.onResponseEnd()
    t.same(usages, expected, `${label}: the usage, once`)
    t.same(ids, ['resp_images'], `${label}: the id, from response.created`)
  }
})

t.test('regression: a JSON answer over 8 MiB has its id and usage read from its start and end, in any chunking', async (t) => {
  const image = 'iVBORw0KGgo'.repeat(Math.ceil(9 * 1024 * 1024 / 11))
  const usage = { input_tokens: 4000, input_tokens_details: { cached_tokens: 3072 }, output_tokens: 6000, output_tokens_details: { reasoning_tokens: 64 }, total_tokens: 10000 }
  const answer = { id: 'resp_json_images', object: 'response', status: 'completed', model: 'gpt-5', output: [{ type: 'image_generation_call', id: 'ig_1', result: image }], usage, user: null, metadata: {} }
  for (const indent of [2, undefined]) {
    const body = Buffer.from(JSON.stringify(answer, null, indent))
    for (const { label, chunks } of [{ label: 'one chunk', chunks: [body] }, { label: '64 KiB chunks', chunks: fixedChunks(body, 65_536) }, { label: 'random chunks', chunks: randomChunks(body, indent ?? 9, 200_000) }]) {
      const learned = { ids: [] as string[], usages: [] as unknown[], models: [] as string[] }
      const observer = new ResponseObserver({ onResponseId: (id) => learned.ids.push(id), onUsage: (u) => learned.usages.push(u), holdUsage: () => {}, releaseUsage: () => {}, traced: true, onResponseModel: (m) => learned.models.push(m) })
      observer.onResponseStart(200, ['content-type', 'application/json'])
      for (const chunk of chunks) observer.onChunk(chunk)
      observer.onResponseEnd()
      t.same(learned, { ids: ['resp_json_images'], usages: [{ input: 4000, cached: 3072, output: 6000, reasoning: 64 }], models: ['gpt-5'] }, `${indent === undefined ? 'compact' : 'pretty'}, ${label}`)
    }
  }
  // Written otherwise (not `id` then `object`), such a body still passes unread rather than misread.
  const other = Buffer.from(JSON.stringify({ object: 'response', id: 'resp_other', output: [image], usage }))
  const ids: string[] = []
  const observer = new ResponseObserver(factsTo(ids))
  observer.onResponseStart(200, ['content-type', 'application/json'])
  for (const chunk of fixedChunks(other, 65_536)) observer.onChunk(chunk)
  observer.onResponseEnd()
  t.same(ids, [], 'another key order: nothing learned')
})

t.test('of an event over maxEventBytes, tailBytes offers the end of its over-long data line, cut', async (t) => {
  const long = 'abcdefghij'.repeat(6) // 60 bytes, over the limit of 48
  const options = { maxEventBytes: 48, tailBytes: 16 }
  for (const eol of ['\n', '\r\n']) {
    const seen = (text: string): Array<[string | undefined, string, boolean]> => {
      const out: Array<[string | undefined, string, boolean]> = []
      const observer = new SseObserver({ wants: (type) => type === 'response.completed', onEvent: (type, data, cut) => { out.push([type, data, cut === true]) }, ...options })
      for (const chunk of fixedChunks(Buffer.from(text), 7)) observer.push(chunk)
      return out
    }
    const label = JSON.stringify(eol)
    t.same(seen(`event: response.completed${eol}data: ${long}${eol}${eol}`), [['response.completed', long.slice(-16), true]], `${label}: one long line`)
    t.same(seen(`event: response.completed${eol}data: short${eol}data: ${long}${eol}data: after${eol}${eol}`), [['response.completed', long.slice(-16), true]],
      `${label}: the line that passed the limit, not the lines after it`)
    t.same(seen(`event: response.output_text.delta${eol}data: ${long}${eol}${eol}`), [], `${label}: an unwanted event: nothing`)
    t.same(seen(`event: response.completed${eol}data: ${long.slice(0, 40)}${eol}${eol}`), [['response.completed', long.slice(0, 40), false]], `${label}: a short event whole, not cut`)
  }
})

t.test('the end of an event over maxEventBytes (tailBytes) is the same however the stream is chunked', async (t) => {
  // Small limits, lines of every length around them, multi-line events, data before the
  // event line, CR/LF: where a chunk boundary falls never changes what is reported, cut or not.
  const max = 48
  const random = xorshift32(0x7a11b17e)
  const next = (n: number): number => random() % n
  const types = ['response.created', 'response.completed', 'response.output_text.delta']
  const mismatches: string[] = []
  let cut = 0
  for (let n = 0; n < 300; n++) {
    const eol = next(3) === 0 ? '\r\n' : '\n'
    let text = ''
    for (let line = 0, lines = 5 + next(30); line < lines; line++) {
      const kind = next(10)
      const payload = Array.from({ length: Math.max(0, max - 20 + next(60)) }, (_, i) => String.fromCharCode(0x61 + ((i * 7 + line) % 26))).join('')
      if (kind < 3) text += `event: ${types[next(types.length)]!}${eol}`
      else if (kind < 8) text += `data:${next(2) === 0 ? ' ' : ''}${payload}${next(4) === 0 ? 'é' : ''}${eol}`
      else if (kind < 9) text += `: ${payload}${eol}`
      else text += eol
    }
    const bytes = Buffer.from(text + eol + eol)
    const run = (chunks: Buffer[]): Array<[string | undefined, string, boolean]> => {
      const seen: Array<[string | undefined, string, boolean]> = []
      const observer = new SseObserver({ wants: (type) => type !== 'response.output_text.delta', onEvent: (type, data, isCut) => { seen.push([type, data, isCut === true]) }, maxEventBytes: max, tailBytes: 16 })
      for (const chunk of chunks) observer.push(chunk)
      return seen
    }
    const wholeSeen = run([bytes])
    cut += wholeSeen.filter(([, , isCut]) => isCut).length
    const whole = JSON.stringify(wholeSeen)
    for (const { label, chunks } of chunkings(bytes, 12)) {
      if (JSON.stringify(run(chunks)) !== whole) mismatches.push(`stream ${n}, ${label}`)
    }
  }
  t.ok(cut > 100, `events were cut (${cut})`)
  t.same(mismatches.slice(0, 20), [], 'no chunking disagrees')
})
