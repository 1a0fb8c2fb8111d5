/**
 * A session outlives its connection: a chain of responses, a conversation or a prompt cache
 * key finds the same session again from a brand-new connection, by the documented precedence,
 * while bodies still reach the upstream byte for byte.
 */
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import type { MockUpstream } from '../support/mock-upstream.js'
import { startGatewayWithUpstream, type RunningGateway, type Teardown } from '../support/gateway.js'
import { answerWithNewResponses, headerValue as header, postResponse, type Exchange, type PostOptions } from '../support/responses-client.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface Harness {
  upstream: MockUpstream
  gateway: RunningGateway
  /** Response ids the upstream has answered with, in order. */
  answered: string[]
}

/** A gateway in front of an upstream that answers every request with a new response id. */
async function start (t: Teardown, env: Record<string, string> = {}): Promise<Harness> {
  const { upstream, gateway } = await startGatewayWithUpstream(t, env)
  return { upstream, gateway, answered: answerWithNewResponses(upstream) }
}

/** One POST /v1/responses on a brand-new connection. */
async function call (h: Harness, body: unknown, options: PostOptions = {}): Promise<Exchange> {
  return await postResponse(h.gateway, h.upstream, h.answered, body, options)
}

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

t.test('a chain of responses continued over fresh connections stays in the first one\'s session, streamed or not', async (t) => {
  const h = await start(t)
  const a = await call(h, { model: 'gpt-5', input: 'Write a haiku.', stream: true })
  t.equal(a.status, 200)
  t.match(a.session, UUID, 'the first request gets a new session')
  t.equal(a.source, 'connection')

  // Each request continues the previous response; the answers alternate SSE, JSON, SSE, JSON, SSE.
  const chain = [a]
  for (const stream of [false, true, false, true]) {
    const previous = chain.at(-1)!
    const next = await call(h, { model: 'gpt-5', input: 'And another.', previous_response_id: previous.responseId, stream })
    t.equal(next.status, 200)
    t.equal(next.session, a.session, `continuing ${previous.responseId} (answered ${chain.length % 2 === 1 ? 'as SSE' : 'as JSON'}) keeps A's session`)
    t.equal(header(next.seen?.headers, 'session_id'), a.session, 'under both header spellings')
    t.equal(next.source, 'previous_response')
    chain.push(next)
  }

  const other = await call(h, { model: 'gpt-5', input: 'Something else.', stream: true })
  t.not(other.session, a.session, 'a new chain on a new connection is another session')
  const otherNext = await call(h, { model: 'gpt-5', previous_response_id: other.responseId })
  t.equal(otherNext.session, other.session, 'and it has its own lineage')
})

t.test('a conversation is one session, as a string or as {id}; different conversations differ', async (t) => {
  const h = await start(t)
  const asString = await call(h, { model: 'gpt-5', conversation: 'conv_abc123', input: 'hi' })
  const asObject = await call(h, { model: 'gpt-5', conversation: { id: 'conv_abc123' }, input: 'again' })
  const again = await call(h, { model: 'gpt-5', conversation: 'conv_abc123', input: 'and again', stream: true })
  t.match(asString.session, UUID)
  t.equal(asString.source, 'conversation')
  t.equal(asObject.session, asString.session, '{id} is the same conversation as the string')
  t.equal(again.session, asString.session)
  const other = await call(h, { model: 'gpt-5', conversation: { id: 'conv_other' }, input: 'hi' })
  t.not(other.session, asString.session, 'another conversation is another session')

  // The session is derived from the conversation id, so another replica agrees without being told.
  const replica = await start(t)
  t.equal((await call(replica, { conversation: 'conv_abc123' })).session, asString.session, 'a second gateway gives the same session')
})

t.test('the same prompt_cache_key gives the same session over fresh connections; another key another', async (t) => {
  const h = await start(t)
  const first = await call(h, { model: 'gpt-5', prompt_cache_key: 'user-42-project-x', input: 'hi' })
  const second = await call(h, { model: 'gpt-5', prompt_cache_key: 'user-42-project-x', input: 'hi again', stream: true })
  const other = await call(h, { model: 'gpt-5', prompt_cache_key: 'user-43-project-x', input: 'hi' })
  t.match(first.session, UUID)
  t.equal(first.source, 'prompt_cache_key')
  t.equal(second.session, first.session)
  t.not(other.session, first.session)
})

t.test('precedence: previous_response_id, then conversation, then prompt_cache_key', async (t) => {
  const h = await start(t)
  const replica = await start(t) // a fresh gateway: what each key alone derives to
  const s = await call(h, { model: 'gpt-5', input: 'start', stream: true })

  const all = await call(h, { previous_response_id: s.responseId, conversation: 'conv_p1', prompt_cache_key: 'pck_p1' })
  t.equal(all.session, s.session, 'a known previous_response_id beats conversation and prompt_cache_key')
  t.equal(all.source, 'previous_response')

  const convAndKey = await call(h, { conversation: 'conv_p2', prompt_cache_key: 'pck_p2' })
  t.equal(convAndKey.source, 'conversation', 'conversation beats prompt_cache_key')
  t.equal(convAndKey.session, (await call(replica, { conversation: 'conv_p2' })).session, "it is the conversation's own session")
  t.not(convAndKey.session, (await call(replica, { prompt_cache_key: 'pck_p2' })).session)
})

t.test('two conversations that share a prompt_cache_key stay two sessions', async (t) => {
  // Regression: a prompt_cache_key already known beat a conversation seen for the first time,
  // so every conversation of a client that uses one cache key per user merged into one session.
  const h = await start(t)
  const c1 = await call(h, { conversation: 'conv_first', prompt_cache_key: 'user-7', input: 'hi' })
  const c2 = await call(h, { conversation: 'conv_second', prompt_cache_key: 'user-7', input: 'hi' })
  t.equal(c1.source, 'conversation')
  t.equal(c2.source, 'conversation')
  t.not(c2.session, c1.session)
  t.equal((await call(h, { conversation: 'conv_first' })).session, c1.session)
  t.equal((await call(h, { conversation: 'conv_second' })).session, c2.session)
})

t.test("a client's session-id header beats every body field, and its body is not waited for", async (t) => {
  const h = await start(t)
  const s = await call(h, { model: 'gpt-5', input: 'start', stream: true })

  const withHeader = await call(h, { previous_response_id: s.responseId, conversation: 'conv_h', prompt_cache_key: 'pck_h' }, { headers: { 'session-id': 'client-chosen-1' } })
  t.equal(withHeader.session, 'client-chosen-1')
  t.equal(withHeader.source, 'header')

  // The body starts by naming S's response, then stalls until the upstream has received the
  // request: a gateway that read the body to decide the session could never get there.
  const headSeen = new Promise<IncomingHttpHeaders>((resolve) => {
    h.upstream.server.once('request', (req: { headers: IncomingHttpHeaders }) => resolve(req.headers))
  })
  const first = Buffer.from(`{"previous_response_id":"${s.responseId!}",`)
  const rest = Buffer.from('"input":"the rest of a body the scanner would have used"}')
  const guard = new AbortController()
  async function * body (): AsyncIterable<Buffer> {
    yield first
    await Promise.race([headSeen, new Promise((_resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the upstream never saw the request while its body was incomplete')), 5_000)
      guard.signal.addEventListener('abort', () => clearTimeout(timer))
    })])
    yield rest
  }
  try {
    const streamed = await call(h, undefined, { headers: { 'session-id': 'client-chosen-2' }, raw: body() })
    t.equal(header(await headSeen, 'session-id'), 'client-chosen-2', 'the upstream had the request head before the body ended')
    t.equal(streamed.status, 200)
    t.equal(streamed.session, 'client-chosen-2')
    t.equal(streamed.source, 'header')
    t.equal(streamed.seen?.body.toString(), Buffer.concat([first, rest]).toString(), 'the body arrived whole')
  } finally {
    guard.abort()
  }
})

t.test('a session decided one way is remembered for the other keys of the request', async (t) => {
  const h = await start(t)
  const s = await call(h, { model: 'gpt-5', input: 'start', stream: true })
  const both = await call(h, { prompt_cache_key: 'pck_remember', previous_response_id: s.responseId })
  t.equal(both.session, s.session)
  const keyOnly = await call(h, { prompt_cache_key: 'pck_remember', input: 'later, on its own' })
  t.equal(keyOnly.session, s.session, 'the key now leads to the session the response id decided')
  t.equal(keyOnly.source, 'prompt_cache_key')
})

t.test('a 5 MB body with previous_response_id as its last key gets its session and reaches the upstream byte for byte', async (t) => {
  const h = await start(t)
  const s = await call(h, { model: 'gpt-5', input: 'start', stream: true })
  const input = Array.from({ length: 14_000 }, (_, i) => ({
    type: 'message',
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: [{
      type: i % 2 === 0 ? 'input_text' : 'output_text',
      text: `Turn ${i}: she said "don't {"previous_response_id": "resp_fake"} it", a path C:\\Users\\x\\file.txt, ` +
        'emoji 🎉🚀, Ελληνικά, 日本語のテキスト, tab\tand newline\n, and some filler: ' + 'lorem ipsum dolor sit amet '.repeat(8)
    }]
  }))
  // Hand-built so previous_response_id is certainly the last key.
  const raw = Buffer.from(`{"model":"gpt-5","stream":false,"input":${JSON.stringify(input)},"previous_response_id":"${s.responseId!}"}`, 'utf8')
  t.ok(raw.length > 5 * 1024 * 1024, `${(raw.length / 1024 / 1024).toFixed(1)} MB`)
  const big = await call(h, undefined, { raw })
  t.equal(big.status, 200)
  t.equal(big.session, s.session)
  t.equal(big.source, 'previous_response')
  t.equal(big.seen?.body.length, raw.length)
  t.equal(sha256(big.seen!.body), sha256(raw), 'byte-identical upstream')
})

t.test('bodies the gateway does not read are forwarded untouched and get the connection session', async (t) => {
  const h = await start(t)
  const s = await call(h, { model: 'gpt-5', input: 'start', stream: true })
  const json = JSON.stringify({ model: 'gpt-5', previous_response_id: s.responseId, input: 'héllo' })

  const text = await call(h, undefined, { raw: json, headers: { 'content-type': 'text/plain; charset=utf-8' } })
  t.equal(text.status, 200)
  t.equal(text.source, 'connection', 'text/plain is not read')
  t.match(text.session, UUID)
  t.not(text.session, s.session)
  t.equal(text.seen?.body.toString('utf8'), json)

  const gzipped = gzipSync(Buffer.from(json))
  const compressed = await call(h, undefined, { raw: gzipped, headers: { 'content-encoding': 'gzip' } })
  t.equal(compressed.status, 200)
  t.equal(compressed.source, 'connection', 'a gzip-encoded JSON body is not read')
  t.not(compressed.session, s.session)
  t.equal(header(compressed.seen?.headers, 'content-encoding'), 'gzip')
  t.equal(sha256(compressed.seen!.body), sha256(gzipped), 'the compressed bytes arrive as sent')
})

t.test('an unknown previous_response_id falls back to the next rule', async (t) => {
  const h = await start(t)
  const replica = await start(t)
  const withKey = await call(h, { previous_response_id: 'resp_never_seen_1', prompt_cache_key: 'pck_fallback' })
  t.equal(withKey.source, 'prompt_cache_key')
  t.equal(withKey.session, (await call(replica, { prompt_cache_key: 'pck_fallback' })).session, "the key's own session")

  const alone = await call(h, { previous_response_id: 'resp_never_seen_2' })
  t.equal(alone.status, 200)
  t.equal(alone.source, 'connection')
  t.match(alone.session, UUID)
  t.not(alone.session, withKey.session)
})

t.test('a JSON body over BODY_LIMIT is refused with body_too_large and nothing goes upstream', async (t) => {
  const h = await start(t, { BODY_LIMIT: '1024' })
  const raw = JSON.stringify({ model: 'gpt-5', input: 'x'.repeat(2000), previous_response_id: 'resp_1' })
  t.ok(raw.length > 2000)

  const declared = await call(h, undefined, { raw })
  t.equal(declared.status, 413, 'with content-length')
  t.match(JSON.parse(declared.body), { error: { type: 'invalid_request_error', code: 'body_too_large', message: /1024/ } })

  async function * chunked (): AsyncIterable<Buffer> {
    yield Buffer.from(raw.slice(0, 700))
    yield Buffer.from(raw.slice(700))
  }
  const streamed = await call(h, undefined, { raw: chunked() })
  t.equal(streamed.status, 413, 'chunked, found while reading')
  t.match(JSON.parse(streamed.body), { error: { type: 'invalid_request_error', code: 'body_too_large' } })

  t.equal(h.upstream.requests.length, 0, 'nothing reached the upstream')
  const small = await call(h, { model: 'gpt-5', input: 'fits' })
  t.equal(small.status, 200, 'a body under the limit still goes through')
})

t.test('BODY_LIMIT also holds for a streamed body the gateway does not read', async (t) => {
  const h = await start(t, { BODY_LIMIT: '1024' })
  async function * chunked (): AsyncIterable<Buffer> {
    yield Buffer.alloc(1000, 'a')
    yield Buffer.alloc(1000, 'b')
  }
  const withHeader = await call(h, undefined, { raw: chunked(), headers: { 'session-id': 'client-1', 'content-type': 'text/plain' } })
  t.equal(withHeader.status, 413)
  t.equal(h.upstream.requests.length, 0)
})

t.test('a compressed JSON response (gzip, br) still teaches its id and usage', async (t) => {
  const h = await start(t)
  const { brotliCompressSync } = await import('node:zlib')
  for (const [encoding, compress] of [['gzip', gzipSync], ['br', brotliCompressSync]] as const) {
    const id = `resp_${encoding}_compressed`
    h.upstream.handle((_req, res) => {
      const body = compress(Buffer.from(JSON.stringify({ id, object: 'response', status: 'completed', output: [], usage: { input_tokens: 50, input_tokens_details: { cached_tokens: 40 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 1 }, total_tokens: 55 } })))
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding, 'content-length': body.length })
      res.end(body)
    })
    const first = await call(h, { model: 'gpt-5', input: 'compressed please' }, { headers: { 'accept-encoding': 'gzip, br' } })
    t.equal(first.status, 200)
    answerWithNewResponses(h.upstream)
    // The id is learned once the client has the whole body; wait for the usage to be counted.
    const usageUrl = `${h.gateway.origin}/gateway/sessions/${first.session ?? ''}`
    let usage: { input_tokens?: number } = {}
    for (let attempt = 0; attempt < 50 && usage.input_tokens !== 50; attempt++) {
      const res = await fetch(usageUrl)
      usage = res.ok ? await res.json() as typeof usage : {}
      if (usage.input_tokens !== 50) await new Promise((resolve) => setImmediate(resolve))
    }
    t.equal(usage.input_tokens, 50, `${encoding}: usage counted from the inflated body`)
    const next = await call(h, { model: 'gpt-5', previous_response_id: id })
    t.equal(next.session, first.session, `${encoding}: the response id was learned`)
    t.equal(next.source, 'previous_response')
  }
})
