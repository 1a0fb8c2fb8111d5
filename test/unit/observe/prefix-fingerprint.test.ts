import t, { type Test } from 'tap'
import { PrefixFingerprint, type RequestPrefix } from '../../../src/observe/prefix-fingerprint.js'

function prefixOf (...chunks: Array<string | Buffer>): RequestPrefix | undefined {
  const tap = new PrefixFingerprint()
  for (const chunk of chunks) tap.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return tap.result()
}

const TOOLS = [{ type: 'function', name: 'shell', parameters: { type: 'object', properties: { cmd: { type: 'string', description: 'a "quoted" \\ thing {not} [json]' } } } }]
const BODY = JSON.stringify({ model: 'gpt-5', instructions: 'Be brief.\n"Really" \\ brief: }]', input: [{ role: 'user', content: 'hi "there" {' }], tools: TOOLS, stream: true })

t.test('the same fields give the same fingerprint, and the model is read', async (t) => {
  const a = prefixOf(BODY)
  t.ok(a)
  t.match(a!.fingerprint, /^[0-9a-f]{16}$/)
  t.equal(a!.model, 'gpt-5')
  t.same(prefixOf(BODY), a)
})

t.test('split at every byte offset gives the same fingerprint', async (t) => {
  const whole = prefixOf(BODY)!
  const bytes = Buffer.from(BODY)
  for (let i = 0; i <= bytes.length; i++) {
    const split = prefixOf(bytes.subarray(0, i), bytes.subarray(i))
    if (split?.fingerprint !== whole.fingerprint || split.model !== 'gpt-5') {
      t.fail(`split at ${i} gives ${JSON.stringify(split)}`)
      return
    }
  }
  // And one byte at a time.
  const tap = new PrefixFingerprint()
  for (let i = 0; i < bytes.length; i++) tap.push(bytes.subarray(i, i + 1))
  t.same(tap.result(), whole)
})

t.test('fields in any order, and other fields, do not change it', async (t) => {
  const a = prefixOf(JSON.stringify({ model: 'm', instructions: 'x', tools: TOOLS, input: 'one' }))
  const b = prefixOf(JSON.stringify({ input: 'two', tools: TOOLS, stream: false, instructions: 'x', metadata: { model: 'other', tools: [] }, model: 'm' }))
  t.equal(a!.fingerprint, b!.fingerprint)
  t.equal(b!.model, 'm', 'a nested model key is not the request model')
})

t.test('each of model, instructions and tools changes it', async (t) => {
  const base = { model: 'm', instructions: 'x', tools: TOOLS, input: 'hi' }
  const fp = (body: object): string => prefixOf(JSON.stringify(body))!.fingerprint
  t.not(fp({ ...base, model: 'n' }), fp(base))
  t.not(fp({ ...base, instructions: 'y' }), fp(base))
  t.not(fp({ ...base, tools: [...TOOLS, { type: 'web_search' }] }), fp(base))
  t.not(fp({ model: 'm', input: 'hi' }), fp(base), 'absent fields count as absent')
  t.equal(fp({ ...base, input: 'something else entirely' }), fp(base))
})

t.test('escapes: escaped quotes inside values, and keys written with escapes', async (t) => {
  const plain = prefixOf('{"model":"m","tools":[{"d":"a\\"],}"}],"input":"\\\\"}')
  const escapedKey = prefixOf('{"input":"\\\\","tool\\u0073":[{"d":"a\\"],}"}],"\\u006dodel":"m"}')
  t.ok(plain)
  t.equal(escapedKey!.fingerprint, plain!.fingerprint)
  t.equal(escapedKey!.model, 'm')
  t.equal(prefixOf('{"model":"gpt\\u002d5"}')!.model, 'gpt-5', 'the model name is decoded')
})

t.test('regression: a field\'s name written wholly in \\u escapes is still that field, however long the name', async (t) => {
  const escaped = (name: string): string => [...name].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')
  for (const [name, value] of [['reasoning_effort', '"high"'], ['response_format', '{"type":"json_object"}'], ['model', '"m"']] as const) {
    t.equal(prefixOf(`{"${escaped(name)}":${value},"input":"hi"}`)!.fingerprint, prefixOf(`{"${name}":${value},"input":"hi"}`)!.fingerprint, `${name}, ${escaped(name).length} bytes written`)
  }
  const plain = prefixOf('{"reasoning_effort":"high"}')!.fingerprint
  const bytes = Buffer.from(`{"${escaped('reasoning_effort')}":"high"}`)
  for (let i = 0; i <= bytes.length; i++) {
    if (prefixOf(bytes.subarray(0, i), bytes.subarray(i))!.fingerprint !== plain) {
      t.fail(`split at ${i}`)
      return
    }
  }
  t.pass('split at every byte')
  t.not(prefixOf(`{"${escaped('reasoning_effort')}x":"high"}`)!.fingerprint, plain, 'a longer key is another key')
})

t.test('nested objects and arrays, scalars and whitespace', async (t) => {
  const body = '{ "tools" : [ {"a": {"b": [1, 2, {"c": "}"}]}} ] , "model" : "m" ,"instructions":null, "n": -1.5e3, "t": true}'
  const r = prefixOf(body)
  t.ok(r)
  t.equal(r!.model, 'm')
  t.not(prefixOf(body.replace('"instructions":null', '"instructions":"x"'))!.fingerprint, r!.fingerprint)
})

t.test('of duplicate keys the last counts, as with JSON.parse', async (t) => {
  t.equal(prefixOf('{"model":"a","model":"b"}')!.fingerprint, prefixOf('{"model":"b"}')!.fingerprint)
  t.equal(prefixOf('{"model":"a","model":"b"}')!.model, 'b')
})

t.test('no prefix for what is not one whole JSON object', async (t) => {
  t.equal(prefixOf('[1,2]'), undefined)
  t.equal(prefixOf('model=gpt-5'), undefined)
  t.equal(prefixOf('{"model":"m","tools":[1,'), undefined, 'cut short')
  t.equal(prefixOf(Buffer.from([0x1f, 0x8b, 0x08, 0x00])), undefined, 'gzip bytes')
  t.equal(prefixOf(''), undefined)
})

t.test('a long model value is hashed but not kept as a name', async (t) => {
  const r = prefixOf(JSON.stringify({ model: 'x'.repeat(1000) }))
  t.ok(r)
  t.equal(r!.model, undefined)
})

t.test('a WebSocket response.create: its type is read, and left out of the fingerprint', async (t) => {
  const body = JSON.parse(BODY) as Record<string, unknown>
  const message = prefixOf(JSON.stringify({ type: 'response.create', ...body }))!
  t.equal(message.type, 'response.create')
  t.equal(message.fingerprint, prefixOf(BODY)!.fingerprint, 'the same prefix as the HTTP body')
  t.equal(prefixOf(JSON.stringify({ ...body, type: 'response.create' }))!.type, 'response.create', 'wherever the type is')
  t.equal(prefixOf(BODY)!.type, undefined, 'an HTTP body has none')
  t.equal(prefixOf('{"type":"response.processed","response_id":"resp_1"}')!.type, 'response.processed')
})

t.test('whether any of the three fields was at the top level: not when they are nested under response', async (t) => {
  t.equal(prefixOf(BODY)!.hasPrefixFields, true)
  t.equal(prefixOf('{"model":"m"}')!.hasPrefixFields, true)
  t.equal(prefixOf('{"tools":[]}')!.hasPrefixFields, true)
  const nested = prefixOf(JSON.stringify({ type: 'response.create', response: JSON.parse(BODY) }))!
  t.equal(nested.hasPrefixFields, false)
  t.equal(nested.model, undefined)
})

t.test('a chat call: its first message is part of the prefix, the rest of the conversation is not', async (t) => {
  const system = { role: 'system', content: 'You are terse. "Quote" {brace} [bracket]' }
  const chat = (first: object, ...rest: object[]): RequestPrefix => prefixOf(JSON.stringify({ model: 'gpt-4.1', messages: [first, ...rest], stream: true }))!
  const base = chat(system, { role: 'user', content: 'hi' })
  t.equal(base.hasPrefixFields, true)
  t.equal(chat(system, { role: 'user', content: 'something else' }, { role: 'assistant', content: 'ok' }).fingerprint, base.fingerprint, 'later messages do not count')
  t.not(chat({ ...system, content: 'You are verbose.' }, { role: 'user', content: 'hi' }).fingerprint, base.fingerprint, 'a changed system message does')
  t.not(chat({ role: 'developer', content: system.content }, { role: 'user', content: 'hi' }).fingerprint, base.fingerprint, 'so does its role')
  t.not(prefixOf(JSON.stringify({ model: 'gpt-4.1', stream: true }))!.fingerprint, base.fingerprint, 'no messages differs from some')
  // Cut inside the first message and just after it: the same fingerprint.
  const bytes = Buffer.from(JSON.stringify({ model: 'gpt-4.1', messages: [system, { role: 'user', content: 'hi' }], stream: true }))
  for (let i = 0; i <= bytes.length; i++) {
    if (prefixOf(bytes.subarray(0, i), bytes.subarray(i))!.fingerprint !== base.fingerprint) {
      t.fail(`split at ${i}`)
      return
    }
  }
  t.pass('every split gives the same fingerprint')
})

t.test('a chat call: every leading system or developer message is part of the prefix, the conversation after them is not', async (t) => {
  const system = { role: 'system', content: 'You are terse. "Quote" {brace} [bracket]' }
  const developer = { role: 'developer', content: 'Answer in French.' }
  const user = { role: 'user', content: 'hi' }
  const fp = (...messages: object[]): string => prefixOf(JSON.stringify({ model: 'gpt-4.1', messages, stream: true }))!.fingerprint
  const base = fp(system, developer, user)
  t.not(fp(system, { ...developer, content: 'Answer in German.' }, user), base, 'a changed developer message after the system message')
  t.not(fp(system, user), base, 'a developer message dropped')
  t.not(fp(system, developer, { role: 'system', content: 'Today is Monday.' }, user), base, 'a third instruction added')
  t.equal(fp(system, developer, { role: 'user', content: 'another question' }, { role: 'assistant', content: 'ok' }), base, 'later turns do not count')
  t.equal(fp({ content: system.content, role: 'system' }, { content: developer.content, role: 'developer' }, user), fp({ content: system.content, role: 'system' }, { content: developer.content, role: 'developer' }, { content: 'something else', role: 'user' }), 'the role is read wherever it stands in a message')
  t.equal(fp(system, developer), fp(system, developer), 'only instructions')
  t.equal(fp(user, developer, { role: 'user', content: 'a' }), fp(user, { ...developer, content: 'other' }, { role: 'user', content: 'b' }), 'a first message that is no instruction is the whole of it: a system message later in the conversation is not')
  t.not(fp(system, { role: 'developer', roles: 'x', content: 'a' }, user), fp(system, { role: 'developer', roles: 'x', content: 'b' }, user), 'a key that only starts with role is another key')
  t.equal(fp(system, { role: 'user', content: 'a', name: 'system' }), fp(system, { role: 'user', content: 'b', name: 'system' }), 'a user message is no instruction for holding the word')
  t.equal(fp(system, { role: 'user', content: 'system' }), fp(system, { role: 'user', content: 'x' }))
  t.equal(fp(system, { role: null, content: 'a' }), fp(system, { role: null, content: 'b' }), 'a role that is not a string is no instruction')
  t.equal(fp(system, { role: ['system'], content: 'a' }), fp(system, { role: ['system'], content: 'b' }))
  const escaped = (content: string): string => prefixOf(`{"model":"gpt-4.1","messages":[${JSON.stringify(system)},{"r\u006fle":"d\u0065veloper","content":"${content}"},{"role":"user","content":"hi"}]}`)!.fingerprint
  t.not(escaped('a'), escaped('b'), 'a role written with escapes is read as the role it spells')
  const duplicate = (content: string): string => prefixOf(`{"model":"gpt-4.1","messages":[${JSON.stringify(system)},{"role":"developer","content":"${content}","role":"user"}]}`)!.fingerprint
  t.equal(duplicate('a'), duplicate('b'), 'a repeated role: any that is not system or developer makes it none (JSON.parse, which keeps the last, agrees here)')
})

t.test('a chat call: its tools count, in their order, as a Responses call\'s do', async (t) => {
  const tools = [{ type: 'function', function: { name: 'a', parameters: {} } }, { type: 'function', function: { name: 'b', parameters: {} } }]
  const fp = (chatTools: object[]): string => prefixOf(JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'hi' }], tools: chatTools }))!.fingerprint
  t.not(fp([tools[1]!, tools[0]!]), fp(tools))
})

t.test('a chat call split at every byte, and byte by byte: the same fingerprint', async (t) => {
  const body = Buffer.from(JSON.stringify({ model: 'gpt-4.1', messages: [{ content: 'You are "terse".\\', role: 'system' }, { role: 'd\u0065veloper', content: '{[' }, { role: 'user', content: 'hi' }, { role: 'system', content: 'late' }], stream: true }).replace('d\\u0065', 'd\u0065'))
  const whole = prefixOf(body)!
  for (let i = 0; i <= body.length; i++) {
    if (prefixOf(body.subarray(0, i), body.subarray(i))!.fingerprint !== whole.fingerprint) {
      t.fail(`split at ${i}`)
      return
    }
  }
  t.equal(prefixOf(...[...body].map((byte) => Buffer.of(byte)))!.fingerprint, whole.fingerprint)
  t.not(whole.fingerprint, prefixOf(body.toString().replace('{[', '{]'))!.fingerprint, 'the developer message is in it')
})

t.test('a chat call with one system message, or none, keeps the fingerprint the previous version stored', async (t) => {
  // Pinned from the version that read only a chat call's first message.
  t.equal(prefixOf(JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'hi' }] }))!.fingerprint, '5e589f0282daf930')
  t.equal(prefixOf(JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }))!.fingerprint, '9f174ebd71bf76a7')
})

t.test('a body without `messages` keeps the fingerprint earlier versions stored', async (t) => {
  // Pinned from the version before chat calls' first message was read: stored records keep matching.
  const body = prefixOf(JSON.stringify({ model: 'gpt-5', instructions: 'x', tools: TOOLS, input: [{ role: 'user', content: 'hi' }] }))!
  t.equal(body.fingerprint, '53d89925b635e0cb')
})

const SCHEMA = { type: 'object', properties: { answer: { type: 'string', description: 'a "quoted" {brace}' } }, required: ['answer'], additionalProperties: false }
const TEXT = { format: { type: 'json_schema', name: 'reply', strict: true, schema: SCHEMA }, verbosity: 'low' }
const RESPONSE_FORMAT = { type: 'json_schema', json_schema: { name: 'reply', strict: true, schema: SCHEMA } }
const OTHER_SCHEMA = { ...SCHEMA, properties: { ...SCHEMA.properties, score: { type: 'number' } } }

t.test('a structured-output schema is part of the prefix: a Responses call\'s text, a chat call\'s response_format', async (t) => {
  const fp = (body: object): string => prefixOf(JSON.stringify(body))!.fingerprint
  const responses = { model: 'gpt-5', instructions: 'x', tools: TOOLS, text: TEXT, input: 'hi' }
  t.not(fp({ ...responses, text: { ...TEXT, format: { ...TEXT.format, schema: OTHER_SCHEMA } } }), fp(responses), 'a changed schema in text.format')
  t.not(fp({ ...responses, text: { ...TEXT, format: { ...TEXT.format, name: 'other' } } }), fp(responses), 'a renamed format')
  t.not(fp({ ...responses, text: { ...TEXT, verbosity: 'high' } }), fp(responses), 'text is read whole: its verbosity too')
  t.not(fp({ ...responses, text: undefined }), fp(responses), 'no text differs from some')
  t.equal(fp({ input: 'another question', text: TEXT, tools: TOOLS, stream: true, instructions: 'x', model: 'gpt-5' }), fp(responses), 'the same fields in another top-level order, and other fields, do not change it')
  const chat = { model: 'gpt-4.1', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'hi' }], response_format: RESPONSE_FORMAT }
  t.not(fp({ ...chat, response_format: { ...RESPONSE_FORMAT, json_schema: { ...RESPONSE_FORMAT.json_schema, schema: OTHER_SCHEMA } } }), fp(chat), 'a changed schema in response_format')
  t.not(fp({ ...chat, response_format: { type: 'json_object' } }), fp(chat), 'another kind of format')
  t.equal(fp({ response_format: RESPONSE_FORMAT, stream: true, messages: chat.messages, model: 'gpt-4.1' }), fp(chat), 'the same fields in another top-level order')
  t.not(fp({ model: 'm', text: TEXT }), fp({ model: 'm', response_format: TEXT }), 'the two fields are told apart')
  t.equal(prefixOf(JSON.stringify({ text: TEXT }))!.hasPrefixFields, true, 'a schema alone is a prefix field')
})

t.test('a text or response_format nested below the top level is not read', async (t) => {
  const fp = (body: object): string => prefixOf(JSON.stringify(body))!.fingerprint
  const base = { model: 'gpt-5', input: [{ role: 'user', content: 'hi', text: TEXT }], metadata: { response_format: RESPONSE_FORMAT } }
  t.equal(fp({ ...base, input: [{ role: 'user', content: 'hi', text: { ...TEXT, verbosity: 'high' } }], metadata: { response_format: { type: 'text' } } }), fp(base))
  t.equal(fp(base), fp({ model: 'gpt-5' }), 'nor counted as present')
  const nested = prefixOf(JSON.stringify({ type: 'response.create', response: { text: TEXT, response_format: RESPONSE_FORMAT } }))!
  t.equal(nested.hasPrefixFields, false, 'a Realtime-shaped response.create still has none of the fields')
})

/**
 * `body`'s fingerprint is the same split in two at every byte, pushed byte by byte, and read
 * as a WebSocket `response.create` with the same fields.
 */
function readAnyWay (t: Test, body: string): void {
  const whole = prefixOf(body)!
  const bytes = Buffer.from(body)
  for (let i = 0; i <= bytes.length; i++) {
    if (prefixOf(bytes.subarray(0, i), bytes.subarray(i))!.fingerprint !== whole.fingerprint) {
      t.fail(`split at ${i}`)
      return
    }
  }
  t.equal(prefixOf(...[...bytes].map((byte) => Buffer.of(byte)))!.fingerprint, whole.fingerprint, 'byte by byte')
  t.equal(prefixOf(JSON.stringify({ type: 'response.create', ...JSON.parse(body) as object }))!.fingerprint, whole.fingerprint, 'a response.create with the same fields has the same fingerprint')
}

t.test('a schema split at every byte, over WebSocket, and in a type-only tap', async (t) => {
  const body = JSON.stringify({ model: 'gpt-5', text: { format: { type: 'json_schema', name: 'r', schema: { description: 'a \\"}]' } }, verbosity: 'low' }, input: 'hi', response_format: { type: 'json_object' } })
  readAnyWay(t, body)
  const typeOnly = new PrefixFingerprint({ typeOnly: true })
  typeOnly.push(Buffer.from(JSON.stringify({ text: TEXT, type: 'response.create' })))
  t.equal(typeOnly.type(), 'response.create', 'a type-only tap passes over text')
})

const REASONING = { effort: 'medium', summary: 'auto' }

t.test('reasoning effort and verbosity are part of the prefix: a Responses call\'s reasoning, a chat call\'s reasoning_effort and verbosity', async (t) => {
  const fp = (body: object): string => prefixOf(JSON.stringify(body))!.fingerprint
  const responses = { model: 'gpt-5', instructions: 'x', tools: TOOLS, reasoning: REASONING, input: 'hi' }
  t.not(fp({ ...responses, reasoning: { ...REASONING, effort: 'high' } }), fp(responses), 'a changed effort')
  t.not(fp({ ...responses, reasoning: { ...REASONING, summary: 'detailed' } }), fp(responses), 'reasoning is read whole: its summary too')
  t.not(fp({ ...responses, reasoning: undefined }), fp(responses), 'no reasoning differs from some')
  t.equal(fp({ reasoning: REASONING, input: 'another question', tools: TOOLS, stream: true, instructions: 'x', model: 'gpt-5' }), fp(responses), 'the same fields in another top-level order, and other fields, do not change it')
  t.not(fp({ ...responses, text: TEXT }), fp(responses), 'with a schema as well')
  const chat = { model: 'gpt-5', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'hi' }], reasoning_effort: 'low', verbosity: 'low' }
  t.not(fp({ ...chat, reasoning_effort: 'high' }), fp(chat), 'a changed reasoning_effort')
  t.not(fp({ ...chat, verbosity: 'high' }), fp(chat), 'a changed verbosity')
  t.not(fp({ ...chat, verbosity: undefined }), fp(chat), 'no verbosity differs from some')
  t.equal(fp({ verbosity: 'low', stream: true, reasoning_effort: 'low', messages: chat.messages, model: 'gpt-5' }), fp(chat), 'the same fields in another top-level order')
  t.not(fp({ model: 'm', reasoning_effort: 'high' }), fp({ model: 'm', verbosity: 'high' }), 'the fields are told apart')
  t.not(fp({ model: 'm', reasoning: 'high' }), fp({ model: 'm', reasoning_effort: 'high' }), 'reasoning and reasoning_effort too')
  t.equal(prefixOf(JSON.stringify({ reasoning: REASONING }))!.hasPrefixFields, true, 'reasoning alone is a prefix field')
  t.equal(prefixOf(JSON.stringify({ verbosity: 'low' }))!.hasPrefixFields, true, 'verbosity alone is one')
})

t.test('a body without reasoning, reasoning_effort or verbosity keeps the fingerprint the previous version stored', async (t) => {
  // Pinned from the version that read text and response_format but none of these.
  const SHORT_SCHEMA = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false }
  t.equal(prefixOf(JSON.stringify({ model: 'gpt-5', instructions: 'x', text: { format: { type: 'json_schema', name: 'reply', strict: true, schema: SHORT_SCHEMA }, verbosity: 'low' }, input: 'hi' }))!.fingerprint, '08146de6f3d71914')
  t.equal(prefixOf(JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'hi' }], response_format: { type: 'json_object' } }))!.fingerprint, 'ab32b48a064168e8')
})

t.test('a reasoning, reasoning_effort or verbosity nested below the top level is not read', async (t) => {
  const fp = (body: object): string => prefixOf(JSON.stringify(body))!.fingerprint
  const base = { model: 'gpt-5', input: [{ type: 'reasoning', summary: [], reasoning: REASONING }], metadata: { reasoning_effort: 'low', verbosity: 'low' } }
  t.equal(fp({ ...base, input: [{ type: 'reasoning', summary: [], reasoning: { effort: 'high' } }], metadata: { reasoning_effort: 'high', verbosity: 'high' } }), fp(base))
  t.equal(fp(base), fp({ model: 'gpt-5' }), 'nor counted as present')
  const nested = prefixOf(JSON.stringify({ type: 'response.create', response: { reasoning: REASONING, verbosity: 'low' } }))!
  t.equal(nested.hasPrefixFields, false, 'a Realtime-shaped response.create still has none of the fields')
})

t.test('reasoning split at every byte, over WebSocket, and in a type-only tap', async (t) => {
  const body = JSON.stringify({ model: 'gpt-5', reasoning: { effort: 'high', summary: 'a \\"}]' }, input: 'hi', reasoning_effort: 'low', verbosity: 'high' })
  readAnyWay(t, body)
  const typeOnly = new PrefixFingerprint({ typeOnly: true })
  typeOnly.push(Buffer.from(JSON.stringify({ reasoning: REASONING, verbosity: 'low', type: 'response.create' })))
  t.equal(typeOnly.type(), 'response.create', 'a type-only tap passes over them')
})

t.test('a type-only tap reads the top-level type and stops there, wherever it stands', async (t) => {
  const typeOf = (...chunks: string[]): { type: string | undefined, settled: boolean } => {
    const tap = new PrefixFingerprint({ typeOnly: true })
    for (const chunk of chunks) tap.push(Buffer.from(chunk))
    return { type: tap.type(), settled: tap.settled }
  }
  const first = JSON.stringify({ type: 'response.create', ...JSON.parse(BODY) as object })
  t.same(typeOf(first.slice(0, 30)), { type: 'response.create', settled: true }, 'type first: known from the first bytes, the rest is never looked at')
  t.same(typeOf(BODY.slice(0, -1), ',"type":"response.steer"}'), { type: 'response.steer', settled: true }, 'type last: read all the same')
  t.same(typeOf('{"response":{"type":"x"},"type":"response.processed"}'), { type: 'response.processed', settled: true }, 'a nested type is not the message\'s')
  t.same(typeOf(BODY), { type: undefined, settled: false }, 'no type')
  const held = new PrefixFingerprint({ typeOnly: true })
  held.hold(Buffer.from(first.slice(0, 40)))
  held.hold(Buffer.from(first.slice(40)))
  t.equal(held.type(), 'response.create', 'held chunks: read up to the type, the rest dropped')
  t.equal(held.readHeld(), false)
})
