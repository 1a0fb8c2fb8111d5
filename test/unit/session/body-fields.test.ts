/**
 * The body scanner finds only the top-level session fields of a request body, whatever the
 * rest of the body holds, and never throws, recurses or gives up on a partly broken body.
 */
import t from 'tap'
import { readSessionFields } from '../../../src/session/body-fields.js'
import { xorshift32 } from '../../support/random.js'

const read = (text: string | Buffer): ReturnType<typeof readSessionFields> =>
  readSessionFields(typeof text === 'string' ? Buffer.from(text, 'utf8') : text)

t.test('the three fields are found at the top level, in any order, among other fields', async (t) => {
  t.same(read(JSON.stringify({
    model: 'gpt-5',
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello' }] }],
    prompt_cache_key: 'pck-1',
    stream: true,
    previous_response_id: 'resp_1',
    temperature: 0.2,
    conversation: 'conv_1',
    metadata: null
  })), { previousResponseId: 'resp_1', conversation: 'conv_1', promptCacheKey: 'pck-1' })
  t.same(read('{"model":"gpt-5"}'), {}, 'none of them')
})

t.test('regression: a value over 512 characters names no session, so it is never kept as a store key', async (t) => {
  const long = 'k'.repeat(513)
  t.same(read(JSON.stringify({ prompt_cache_key: long, previous_response_id: 'r'.repeat(100_000), conversation: { id: long } })), {}, 'none of the three is taken')
  t.same(read(JSON.stringify({ prompt_cache_key: 'k'.repeat(512) })), { promptCacheKey: 'k'.repeat(512) }, '512 characters are')
  t.same(read(`{"prompt_cache_key":"${'\\u006b'.repeat(512)}"}`), { promptCacheKey: 'k'.repeat(512) }, 'counted in characters, not in escaped bytes')
})

t.test('a conversation object gives its id', async (t) => {
  t.same(read('{"conversation":{"id":"conv_obj","metadata":{"id":"not_this"}}}'), { conversation: 'conv_obj' })
  t.same(read('{"conversation":{"metadata":{"id":"nested_only"}}}'), {}, 'an object without its own id gives nothing')
  t.same(read('{"conversation":{"id":42}}'), {}, 'an id that is not a string gives nothing')
})

t.test('nested occurrences of the keys are ignored', async (t) => {
  const body = {
    model: 'gpt-5',
    tools: [{
      type: 'function',
      name: 'lookup',
      parameters: {
        type: 'object',
        properties: {
          conversation: { type: 'string', description: 'the conversation' },
          previous_response_id: { type: 'string' },
          prompt_cache_key: { type: 'string' }
        }
      }
    }],
    input: [
      { role: 'user', content: 'please send {"previous_response_id": "resp_fake", "conversation": "conv_fake"} as is' },
      { role: 'user', content: [{ type: 'input_text', text: '"prompt_cache_key":"pck_fake", \\"conversation\\": \\"x\\"' }] }
    ],
    metadata: { conversation: 'conv_meta', previous_response_id: 'resp_meta' },
    prompt_cache_key: 'real-key'
  }
  t.same(read(JSON.stringify(body)), { promptCacheKey: 'real-key' })
  // The literal key inside a string, with escaped quotes around it, before the real field.
  t.same(read('{"instructions":"say \\"previous_response_id\\": \\"resp_fake\\", ok","previous_response_id":"resp_real"}'),
    { previousResponseId: 'resp_real' })
  // A string ending in an escaped backslash: its closing quote is real, the next field is found.
  t.same(read('{"a":"ends with a backslash \\\\","conversation":"conv_after_backslash"}'), { conversation: 'conv_after_backslash' })
})

t.test('string escapes in values are decoded', async (t) => {
  t.same(read('{"previous_response_id":"resp_\\u0041"}'), { previousResponseId: 'resp_A' })
  t.same(read('{"prompt_cache_key":"a\\"b\\\\c\\/d\\u00e9\\ud83d\\ude00"}'), { promptCacheKey: 'a"b\\c/dé😀' })
  t.same(read('{"conversation":{"id":"conv_\\u0031"}}'), { conversation: 'conv_1' })
  t.same(read('{"prompt_cache_key":"ключ-日本"}'), { promptCacheKey: 'ключ-日本' }, 'raw UTF-8 is kept')
})

t.test('whitespace and newlines anywhere between tokens are allowed', async (t) => {
  const body = ' \r\n\t{ \n "model" \t:\r\n "x" ,\n\n "input"  :  [ 1 , { "a" : [ ] } ]\t,\r\n' +
    '  "previous_response_id"\n:\n"resp_ws" , "conversation" : { "id" : "conv_ws" } ,"prompt_cache_key"\t:\t"k_ws"\n}\n '
  t.same(read(body), { previousResponseId: 'resp_ws', conversation: 'conv_ws', promptCacheKey: 'k_ws' })
  t.same(read(JSON.stringify({ previous_response_id: 'resp_pretty', input: [{ role: 'user', content: 'x' }] }, null, 2)),
    { previousResponseId: 'resp_pretty' }, 'pretty-printed JSON')
})

t.test('values that are not non-empty strings are ignored', async (t) => {
  for (const value of ['null', '123', '-1.5e3', 'true', 'false', '[]', '["resp_1"]', '{}', '""']) {
    t.same(read(`{"previous_response_id":${value},"prompt_cache_key":${value},"conversation":${value === '{}' ? '{"id":null}' : value}}`), {}, value)
  }
  t.same(read('{"previous_response_id":null,"prompt_cache_key":"still-found"}'), { promptCacheKey: 'still-found' },
    'an ignored value does not stop the scan')
})

t.test('a key that names a member of Object.prototype is not taken for a field', async (t) => {
  // Regression: the key table was an object literal, so "constructor" and friends found
  // Object.prototype's members and leaked junk properties into the result.
  const fields = read('{"constructor":"a","__proto__":"b","toString":"c","hasOwnProperty":"d","valueOf":"e","prompt_cache_key":"k"}')
  t.same(Object.keys(fields), ['promptCacheKey'])
  t.equal(fields.promptCacheKey, 'k')
})

t.test('a body that is not a JSON object gives no fields', async (t) => {
  for (const body of ['[{"previous_response_id":"resp_1"}]', '"previous_response_id"', '42', 'null', 'true',
    'previous_response_id=resp_1', '<xml previous_response_id="resp_1"/>', '', '   \n\t ', '\ufeff{"previous_response_id":"resp_bom"}']) {
    t.same(read(body), {}, JSON.stringify(body.slice(0, 40)))
  }
  t.same(read(Buffer.alloc(0)), {}, 'an empty buffer')
})

t.test('a truncated or malformed body gives what was found before the break, without throwing', async (t) => {
  const whole = '{"previous_response_id":"resp_1","conversation":"conv_1","input":[{"a":"b"}],"prompt_cache_key":"k"}'
  for (let cut = 0; cut <= whole.length; cut++) {
    const found = read(whole.slice(0, cut))
    // Each field appears exactly when its value is complete in the prefix.
    const expected: Record<string, string> = {}
    if (cut >= whole.indexOf(',"conversation"')) expected.previousResponseId = 'resp_1'
    if (cut >= whole.indexOf(',"input"')) expected.conversation = 'conv_1'
    if (cut >= whole.length - 1) expected.promptCacheKey = 'k'
    t.same(found, expected, `cut at ${cut}`)
  }

  const cases: Array<[string, Record<string, string>]> = [
    ['{"previous_response_id":"resp_1" "conversation":"conv_1"}', { previousResponseId: 'resp_1' }], // missing comma
    ['{"previous_response_id":"resp_1",,"conversation":"conv_1"}', { previousResponseId: 'resp_1' }],
    ['{"previous_response_id" "resp_1"}', {}], // missing colon
    ['{previous_response_id:"resp_1"}', {}], // unquoted key
    ['{"previous_response_id":}', {}],
    ['{"previous_response_id":"resp_1","input":[1,2,"unterminated]}', { previousResponseId: 'resp_1' }],
    ['{"prompt_cache_key":"k","input":{"a":[1,2}', { promptCacheKey: 'k' }], // never closes
    ['{"prompt_cache_key":"k\\', {}], // ends inside an escape
    ['{"conversation":{"id":"conv_1"', {}] // the object never closes
  ]
  for (const [body, expected] of cases) t.same(read(body), expected, body)
})

t.test('random garbage never throws', async (t) => {
  const next = xorshift32(0x9e3779b9)
  const alphabet = Buffer.from('{}[]",:\\ \n0123456789abcdeflnrtu')
  const odd: unknown[] = []
  for (let n = 0; n < 5000; n++) {
    const bytes = Buffer.alloc(next() % 64)
    for (let i = 0; i < bytes.length; i++) bytes[i] = n % 2 === 0 ? next() & 0xff : alphabet[next() % alphabet.length]!
    const body = n % 3 === 0 ? Buffer.concat([Buffer.from('{"prompt_cache_key":"k",'), bytes]) : bytes
    const fields = readSessionFields(body) // throwing fails the test
    if (Object.values(fields).some((value) => typeof value !== 'string' || value === '')) odd.push(fields)
    if (n % 3 === 0 && fields.promptCacheKey !== 'k') odd.push(fields)
  }
  t.same(odd, [], 'only non-empty strings, and what came before the garbage is kept')
})

t.test('deep nesting neither throws nor recurses', async (t) => {
  const depth = 100_000
  const deep = '['.repeat(depth) + ']'.repeat(depth)
  t.same(read(`{"input":${deep},"previous_response_id":"resp_deep"}`), { previousResponseId: 'resp_deep' }, 'balanced deep arrays are stepped over')
  t.same(read(`{"input":${'['.repeat(depth)}`), {}, 'unclosed deep arrays')
  t.same(read('['.repeat(depth)), {}, 'a deep top-level array')
  t.same(read(`{"prompt_cache_key":"k","input":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`), { promptCacheKey: 'k' }, 'deep objects')
  // A deep value under a wanted key goes to JSON.parse, which must not blow the stack either way.
  t.same(read(`{"conversation":${'['.repeat(depth)}${']'.repeat(depth)},"prompt_cache_key":"k"}`), { promptCacheKey: 'k' })
})

t.test('a 5 MB body with look-alike keys inside strings yields only its real top-level field at the very end', async (t) => {
  const input = Array.from({ length: 20_000 }, (_, i) => ({
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: [{ type: 'input_text', text: `message ${i}: "quoted" \\ back\\slash, ünïcödé 日本語 🎉 {"previous_response_id":"resp_fake_${i}"} ` + 'x'.repeat(120) }]
  }))
  const body = Buffer.from(JSON.stringify({ model: 'gpt-5', input, previous_response_id: 'resp_last' }))
  t.ok(body.length > 5_000_000, `${body.length} bytes`)
  t.same(readSessionFields(body), { previousResponseId: 'resp_last' })
})

t.test('issue 15: a key name written with JSON escapes is the same field to the scanner as to JSON.parse', async (t) => {
  // Regression: keys were compared byte for byte, so "prompt\u005fcache_key" was that field to
  // the upstream's parser but not to the gateway.
  t.same(read('{"prompt\\u005fcache_key":"k_escaped"}'), { promptCacheKey: 'k_escaped' })
  t.same(read('{"\\u0070revious_response_id":"resp_esc","conv\\u0065rsation":{"id":"conv_esc"}}'),
    { previousResponseId: 'resp_esc', conversation: 'conv_esc' })
  t.same(read('{"\\u0070\\u0072\\u006f\\u006d\\u0070\\u0074\\u005f\\u0063\\u0061\\u0063\\u0068\\u0065\\u005f\\u006b\\u0065\\u0079":"every_char"}'),
    { promptCacheKey: 'every_char' }, 'every character escaped: the longest form of a wanted key')
  t.same(read('{"prompt\\/cache_key":"slash","conversation\\n":"newline","prompt\\u005Fcache_key ":"space"}'), {},
    'an escape that makes another key does not match')
  t.same(read('{"prompt_cache_key\\u005":"broken escape"}'), {}, 'a broken escape names no field')
})

t.test('issue 15: of duplicate top-level keys the last one counts, as in JSON.parse', async (t) => {
  t.same(read('{"conversation":"conv_first","conversation":"conv_last"}'), { conversation: 'conv_last' })
  t.same(read('{"prompt_cache_key":"k1","model":"x","prompt\\u005fcache_key":"k2"}'), { promptCacheKey: 'k2' }, 'escaped or not')
  t.same(read('{"previous_response_id":"resp_1","previous_response_id":null}'), {}, 'a later null clears an earlier id')
  t.same(read('{"conversation":{"id":"conv_obj"},"conversation":""}'), {}, 'a later empty string too')
  t.same(read('{"conversation":{"id":"a","id":"b"}}'), { conversation: 'b' }, 'inside a conversation object as well')
})

t.test('issue 15: the scanner agrees with JSON.parse on generated bodies', async (t) => {
  const seeds = [1, 0xdecafbad, 0x5eed5eed]
  let compared = 0
  for (const seed of seeds) {
    const next = xorshift32(seed)
    for (let n = 0; n < 2_000; n++) {
      const body = generatedBody(next)
      const expected = fieldsOfParsed(JSON.parse(body) as Record<string, unknown>) // the generator makes valid JSON only
      const found = read(body)
      if (!sameFields(found, expected)) {
        t.fail('scanner and JSON.parse disagree', { seed, n, body, found, expected })
        return
      }
      compared++
    }
  }
  t.equal(compared, 6_000, 'every generated body gave the same fields as JSON.parse')
})

function sameFields (a: object, b: object): boolean {
  const keys = Object.keys(a)
  const value = (o: object, key: string): unknown => (o as Record<string, unknown>)[key]
  return keys.length === Object.keys(b).length && keys.every((key) => value(a, key) === value(b, key))
}

/** What the scanner should find, read from JSON.parse's result. */
function fieldsOfParsed (parsed: Record<string, unknown>): Record<string, string> {
  const fields: Record<string, string> = {}
  const usable = (value: unknown): value is string => typeof value === 'string' && value !== ''
  if (usable(parsed.previous_response_id)) fields.previousResponseId = parsed.previous_response_id
  const conversation = parsed.conversation
  const conversationId = conversation !== null && typeof conversation === 'object' ? (conversation as { id?: unknown }).id : conversation
  if (usable(conversationId)) fields.conversation = conversationId
  if (usable(parsed.prompt_cache_key)) fields.promptCacheKey = parsed.prompt_cache_key
  return fields
}

type Random = () => number

const pick = <T>(next: Random, items: readonly T[]): T => items[next() % items.length]!
const FIELD_NAMES = ['previous_response_id', 'conversation', 'prompt_cache_key', 'id', 'model', 'input', 'prompt_cache', 'conversations', 'Conversation', '__proto__']
const STRING_PIECES = ['resp_1', 'conv_x', 'k', '', '"', '\\', '/', ' ', 'é', '日本', '🎉', '{"conversation":"fake"}', '\n', '\u0001', 'previous_response_id']

/** A JSON object body with wanted keys at the top level and nested, duplicated, escaped and spaced at random. */
function generatedBody (next: Random): string {
  const members: string[] = []
  const count = next() % 6
  for (let i = 0; i < count; i++) members.push(`${space(next)}${jsonString(next, pick(next, FIELD_NAMES))}${space(next)}:${space(next)}${jsonValue(next, 0)}${space(next)}`)
  return `${space(next)}{${members.length === 0 ? space(next) : members.join(',')}}${space(next)}`
}

function jsonValue (next: Random, depth: number): string {
  const kind = next() % (depth > 2 ? 5 : 8)
  switch (kind) {
    case 0: return pick(next, ['null', 'true', 'false'])
    case 1: return pick(next, ['0', '-12', '3.5e2', '1E-3'])
    case 2: case 3: case 4: return jsonString(next, Array.from({ length: next() % 4 }, () => pick(next, STRING_PIECES)).join(''))
    case 5: return `[${Array.from({ length: next() % 3 }, () => space(next) + jsonValue(next, depth + 1) + space(next)).join(',')}]`
    default: {
      const members = Array.from({ length: next() % 4 }, () =>
        `${space(next)}${jsonString(next, pick(next, FIELD_NAMES))}${space(next)}:${space(next)}${jsonValue(next, depth + 1)}${space(next)}`)
      return `{${members.join(',')}}`
    }
  }
}

/** A JSON string literal of `text`, each character written plainly or as one of its escapes at random. */
function jsonString (next: Random, text: string): string {
  let out = '"'
  for (const char of text) {
    const plain = JSON.stringify(char).slice(1, -1) // escapes what must be escaped
    const roll = next() % 8
    if (roll === 0) {
      out += [...char].map((c) => [...Array(c.length).keys()].map((i) => '\\u' + c.charCodeAt(i).toString(16).padStart(4, '0')).join('')).join('')
    } else if (roll === 1 && char === '/') {
      out += '\\/'
    } else {
      out += plain
    }
  }
  return out + '"'
}

function space (next: Random): string {
  return next() % 4 === 0 ? pick(next, [' ', '\n', '\t ', '\r\n  ']) : ''
}
