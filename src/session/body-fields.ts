/**
 * Finds the few top-level fields of a JSON request body that decide a session, without
 * parsing or copying the body: strings (most of a long agent history) are skipped with the
 * native `indexOf`, nested values are stepped over, and only the wanted values are decoded.
 */

export interface SessionFields {
  previousResponseId?: string
  /** `conversation` as a string id, or the `id` of a conversation object. */
  conversation?: string
  promptCacheKey?: string
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const COLON = 0x3a
const COMMA = 0x2c

// A Map, not an object literal: a body key such as "constructor" or "__proto__" must not find
// Object.prototype's members and be taken for a wanted field.
const WANTED = new Map<string, keyof SessionFields>([
  ['previous_response_id', 'previousResponseId'],
  ['conversation', 'conversation'],
  ['prompt_cache_key', 'promptCacheKey']
])
const LONGEST_WANTED_KEY = 20

/**
 * The session fields of a JSON object body. Returns `{}` for a body that is not a JSON
 * object, and whatever it found before the point where a malformed body stops making sense.
 */
export function readSessionFields (body: Buffer): SessionFields {
  const fields: SessionFields = {}
  let i = skipWhitespace(body, 0)
  if (body[i] !== OPEN_BRACE) return fields
  i = skipWhitespace(body, i + 1)
  if (body[i] === CLOSE_BRACE) return fields
  for (;;) {
    if (body[i] !== QUOTE) return fields
    const keyEnd = endOfString(body, i)
    if (keyEnd === -1) return fields
    const key = keyEnd - i - 1 <= LONGEST_WANTED_KEY ? WANTED.get(body.toString('latin1', i + 1, keyEnd)) : undefined
    i = skipWhitespace(body, keyEnd + 1)
    if (body[i] !== COLON) return fields
    const valueStart = skipWhitespace(body, i + 1)
    const valueEnd = endOfValue(body, valueStart)
    if (valueEnd === -1) return fields
    if (key !== undefined) {
      const value = decodeFieldValue(body, valueStart, valueEnd, key)
      if (value !== undefined) fields[key] = value
    }
    i = skipWhitespace(body, valueEnd)
    if (body[i] !== COMMA) return fields
    i = skipWhitespace(body, i + 1)
  }
}

function decodeFieldValue (body: Buffer, start: number, end: number, key: keyof SessionFields): string | undefined {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8', start, end))
  } catch {
    return undefined
  }
  if (key === 'conversation' && value !== null && typeof value === 'object') value = (value as { id?: unknown }).id
  return typeof value === 'string' && value !== '' ? value : undefined
}

function skipWhitespace (body: Buffer, i: number): number {
  while (i < body.length) {
    const c = body[i]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
  return i
}

/** Index of the quote that closes the string opening at `start`, or -1 when it never closes. */
function endOfString (body: Buffer, start: number): number {
  let quote = body.indexOf(QUOTE, start + 1)
  while (quote !== -1) {
    let backslashes = 0
    while (body[quote - 1 - backslashes] === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return quote
    quote = body.indexOf(QUOTE, quote + 1)
  }
  return -1
}

/** Index just past the JSON value starting at `start`, or -1 when the body ends inside it. */
function endOfValue (body: Buffer, start: number): number {
  const first = body[start]
  if (first === QUOTE) {
    const end = endOfString(body, start)
    return end === -1 ? -1 : end + 1
  }
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    // A number, true, false or null: runs to the next delimiter.
    let i = start
    while (i < body.length) {
      const c = body[i]
      if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break
      i++
    }
    return i === start ? -1 : i
  }
  // An object or array: count depth, jumping over strings. No recursion, so depth is no risk.
  let depth = 0
  for (let i = start; i < body.length; i++) {
    const c = body[i]
    if (c === QUOTE) {
      i = endOfString(body, i)
      if (i === -1) return -1
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1
    }
  }
  return -1
}
