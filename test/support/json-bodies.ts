/**
 * For the prefix tap's property tests: random JSON request bodies written the many ways JSON
 * allows (whitespace, escapes, duplicate and escaped keys, nesting), and a slow reference that
 * finds each top-level value's bytes by recursive descent, checked against JSON.parse.
 */
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { xorshift32 } from './random.js'

export type Random = () => number

/** A seeded generator of floats in [0, 1). */
export function randomFrom (seed: number): Random {
  const next = xorshift32(seed)
  return () => next() / 0x1_0000_0000
}

const pick = <T>(random: Random, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
const WS = ['', '', '', ' ', '\n', '\t', '\r\n  ']
const STRING_BITS = ['a', 'model', 'tools', ' ', '"', '\\', '/', '\n', '\t', '\u0001', 'é', '€', '😀', '{', '}', '[', ']', ',', ':', '\\"', 'x'.repeat(70)]

/** A JSON string literal for `text`, each character written plainly or (at `escapes`' rate) as an escape at random. */
export function jsonString (random: Random, text: string, escapes = 0.15): string {
  let out = '"'
  for (const ch of text) {
    const plain = JSON.stringify(ch).slice(1, -1)
    if (random() < escapes) out += ch.split('').map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('') // surrogates each
    else if (ch === '/' && random() < 0.5) out += '\\/'
    else out += plain
  }
  return out + '"'
}

function randomText (random: Random): string {
  let text = ''
  const parts = Math.floor(random() * 8)
  for (let i = 0; i < parts; i++) text += pick(random, STRING_BITS)
  return text
}

/** A random JSON value `depth` levels deep at most, written with random whitespace and escapes. */
export function jsonValue (random: Random, depth: number): string {
  const ws = (): string => pick(random, WS)
  const kind = depth <= 0 ? Math.floor(random() * 3) : Math.floor(random() * 5)
  if (kind === 0) return jsonString(random, randomText(random))
  if (kind === 1) return pick(random, ['0', '-1.5e3', '12345678901234567890', 'true', 'false', 'null', '0.25'])
  if (kind === 2) return jsonString(random, pick(random, ['gpt-5', 'tools', 'model', 'system', '']))
  const n = Math.floor(random() * 4)
  const items = Array.from({ length: n }, () => kind === 3
    ? `${ws()}${jsonValue(random, depth - 1)}${ws()}`
    : `${ws()}${jsonString(random, pick(random, ['model', 'tools', 'instructions', 'messages', 'role', 'input', 'text', 'response_format', 'reasoning', 'reasoning_effort', 'verbosity', 'k', randomText(random)]))}${ws()}:${ws()}${jsonValue(random, depth - 1)}${ws()}`)
  return kind === 3 ? `[${items.join(',')}${n === 0 ? ws() : ''}]` : `{${items.join(',')}${n === 0 ? ws() : ''}}`
}

const TOP_KEYS = ['model', 'instructions', 'tools', 'messages', 'messages', 'input', 'input', 'stream', 'metadata', 'modelx', 'tool', '', 'text', 'response_format', 'texts', 'reasoning', 'reasoning_effort', 'verbosity', 'reasoning_', 'effort', 'previous_response_id', 'conversation', 'inputs', 'prompt']
const ROLES = ['system', 'developer', 'user', 'assistant', 'Système', 'role']
/** For the first messages: mostly instructions, so that runs of them are common. */
const LEADING_ROLES = ['system', 'developer', 'system', 'developer', 'user']

/** A random chat message: mostly an object with a role (maybe twice, maybe not a string) among other members, else any value. */
function randomMessage (random: Random, roles: readonly string[]): string {
  const ws = (): string => pick(random, WS)
  if (random() < 0.1) return jsonValue(random, 2)
  const keys = Array.from({ length: Math.floor(random() * 3) }, () => pick(random, ['content', 'name', 'rolex', 'role']))
  if (random() < 0.85) keys.splice(Math.floor(random() * (keys.length + 1)), 0, 'role')
  const members = keys.map((key) => {
    const value = key === 'role' && random() < 0.85 ? jsonString(random, pick(random, roles)) : jsonValue(random, 2)
    return `${ws()}${jsonString(random, key)}${ws()}:${ws()}${value}${ws()}`
  })
  return `{${members.join(',')}${members.length === 0 ? ws() : ''}}`
}

/** A random `messages` array of up to five messages, the first of them likely to be instructions. */
function randomMessages (random: Random): string {
  const ws = (): string => pick(random, WS)
  const lead = Math.floor(random() * 4)
  const items = Array.from({ length: Math.floor(random() * 6) }, (_, i) => `${ws()}${randomMessage(random, i < lead ? LEADING_ROLES : ROLES)}${ws()}`)
  return `[${items.join(',')}${items.length === 0 ? ws() : ''}]`
}

/** A random request body: a top-level object with some of the fingerprinted fields (maybe twice, maybe with escaped keys), in any order. */
export function randomBody (random: Random): Buffer {
  const ws = (): string => pick(random, WS)
  const members: string[] = []
  const n = Math.floor(random() * 9)
  for (let i = 0; i < n; i++) {
    const key = pick(random, TOP_KEYS)
    const value = key === 'model' && random() < 0.7
      ? jsonString(random, pick(random, ['gpt-5', 'gpt-5-codex', 'o3 "mini"', 'm\\n', 'é']))
      : (key === 'messages' || key === 'input') && random() < 0.7 ? randomMessages(random) : jsonValue(random, 3)
    // Now and then a key written wholly in escapes: the longest field names are then 90-96 bytes.
    members.push(`${ws()}${jsonString(random, key, random() < 0.05 ? 1 : 0.15)}${ws()}:${ws()}${value}${ws()}`)
  }
  return Buffer.from(`${ws()}{${members.join(',')}${n === 0 ? ws() : ''}}${ws()}`)
}

/** The top-level fields' raw bytes (the last of duplicates), read by recursive descent and checked against JSON.parse. */
export function topLevelSpans (body: Buffer): Map<string, Buffer> {
  const text = body.toString('latin1') // one character per byte: indices are byte offsets
  const spans = new Map<string, Buffer>()
  let at = skipWs(text, 0)
  if (text[at] !== '{') throw new Error('not an object')
  at = skipWs(text, at + 1)
  while (text[at] !== '}') {
    const keyEnd = valueEnd(text, at)
    const key = JSON.parse(body.toString('utf8', at, keyEnd)) as string
    at = skipWs(text, skipWs(text, keyEnd) + 1) // past the colon
    const end = valueEnd(text, at)
    spans.set(key, body.subarray(at, end))
    at = skipWs(text, end)
    if (text[at] === ',') at = skipWs(text, at + 1)
  }
  const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>
  if (!isDeepStrictEqual(Object.keys(parsed).sort(), [...spans.keys()].sort())) throw new Error('keys differ from JSON.parse')
  for (const [key, raw] of spans) {
    if (!isDeepStrictEqual(JSON.parse(raw.toString('utf8')), parsed[key])) throw new Error(`${key} differs from JSON.parse`)
  }
  return spans
}

function skipWs (text: string, at: number): number {
  while (at < text.length && ' \n\r\t'.includes(text[at]!)) at++
  return at
}

/** Where the JSON value starting at `at` ends. */
function valueEnd (text: string, at: number): number {
  const c = text[at]
  if (c === '"') {
    let i = at + 1
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    return i + 1
  }
  if (c === '{' || c === '[') {
    let i = skipWs(text, at + 1)
    while (text[i] !== '}' && text[i] !== ']') {
      i = skipWs(text, valueEnd(text, i))
      if (text[i] === ':' || text[i] === ',') i = skipWs(text, i + 1)
    }
    return i + 1
  }
  let i = at
  while (i < text.length && !' \n\r\t,}]'.includes(text[i]!)) i++
  return i
}

/**
 * The first `keep` bytes of a top-level `input` array or string, as written, and its length;
 * undefined when there is none, or when a top-level `previous_response_id`, `conversation` or
 * `prompt` is not a scalar (null): the prompt then holds what the upstream keeps.
 */
export function referenceInput (body: Buffer, keep: number): { head: Buffer, bytes: number } | undefined {
  const spans = topLevelSpans(body)
  for (const key of ['previous_response_id', 'conversation', 'prompt']) {
    const first = spans.get(key)?.toString('latin1')[0]
    if (first === '"' || first === '{' || first === '[') return undefined
  }
  const raw = spans.get('input')
  if (raw === undefined || (raw[0] !== 0x22 && raw[0] !== 0x5b)) return undefined
  return { head: raw.subarray(0, keep), bytes: raw.length }
}

/**
 * The parts of a chat call's `messages` in its prefix: its bytes up to the end of the first
 * container directly inside it (the first message), then, while the message just ended was an
 * instruction, the bytes from there to the end of the next container; all of them when it
 * holds no container (or is none).
 */
function leadingMessageParts (raw: Buffer): Buffer[] {
  const text = raw.toString('latin1')
  if (text[0] !== '[' && text[0] !== '{') return [raw]
  const parts: Buffer[] = []
  let from = 0
  let i = skipWs(text, 1)
  while (text[i] !== '}' && text[i] !== ']') {
    const end = valueEnd(text, i)
    if (text[i] === '{' || text[i] === '[') {
      const instruction = isInstruction(raw.subarray(i, end))
      if (parts.length === 0 || instruction) parts.push(raw.subarray(from, end))
      if (!instruction) return parts
      from = end
    }
    i = skipWs(text, end)
    if (text[i] === ':' || text[i] === ',') i = skipWs(text, i + 1)
  }
  return parts.length === 0 ? [raw] : parts
}

/** An object with a `role`, each of whose `role` members (duplicates too) is "system" or "developer", by JSON.parse. */
function isInstruction (message: Buffer): boolean {
  const text = message.toString('latin1')
  if (text[0] !== '{') return false
  const roles: unknown[] = []
  let i = skipWs(text, 1)
  while (text[i] !== '}') {
    const keyEnd = valueEnd(text, i)
    const key = JSON.parse(message.toString('utf8', i, keyEnd)) as string
    i = skipWs(text, skipWs(text, keyEnd) + 1) // past the colon
    const end = valueEnd(text, i)
    if (key === 'role') roles.push(JSON.parse(message.toString('utf8', i, end)))
    i = skipWs(text, end)
    if (text[i] === ',') i = skipWs(text, i + 1)
  }
  return roles.length > 0 && roles.every((role) => role === 'system' || role === 'developer')
}

/** Two 32-bit FNV-1a lanes over `codes` (bytes or UTF-16 units), as 16 hex digits. */
function fnvLanes (codes: ArrayLike<number>): string {
  let a = 0x811c9dc5
  let b = 0x050c5d1f
  for (let i = 0; i < codes.length; i++) {
    a = Math.imul(a ^ codes[i]!, 0x01000193)
    b = Math.imul(b ^ codes[i]!, 0x01000197)
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}

/**
 * The fingerprint as the gateway defines it: each field's bytes digested (up to 256 bytes by
 * FNV-1a lanes, `j`…; longer by SHA-256, `s`…; absent `-`), the three joined in a fixed order,
 * then, when there is `messages`, its leading parts each digested (joined by `+`), then
 * `response_format`, `text`, `reasoning`, `reasoning_effort` and `verbosity` when there, and
 * digested by the lanes again.
 */
export function referencePrefix (body: Buffer): { fingerprint: string, model: string | undefined } {
  const spans = topLevelSpans(body)
  let joined = ''
  const digestOf = (raw: Buffer): string => raw.length <= 256 ? `j${fnvLanes(raw)}` : `s${createHash('sha256').update(raw).digest('hex')}`
  for (const field of ['model', 'instructions', 'tools']) {
    const raw = spans.get(field)
    joined += `${field}:${raw === undefined ? '-' : digestOf(raw)};`
  }
  const messages = spans.get('messages')
  if (messages !== undefined) joined += `messages:${leadingMessageParts(messages).map(digestOf).join('+')};`
  for (const field of ['response_format', 'text', 'reasoning', 'reasoning_effort', 'verbosity']) {
    const raw = spans.get(field)
    if (raw !== undefined) joined += `${field}:${digestOf(raw)};`
  }
  const units = Array.from(joined, (c) => c.charCodeAt(0))
  const model = spans.get('model')
  const name: unknown = model === undefined || model.length > 256 ? undefined : JSON.parse(model.toString('utf8'))
  return { fingerprint: fnvLanes(units), model: typeof name === 'string' ? name : undefined }
}
