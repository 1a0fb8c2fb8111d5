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

/** Whether any field that decides a session was found. */
export function hasLineage (fields: SessionFields): boolean {
  return fields.previousResponseId !== undefined || fields.conversation !== undefined || fields.promptCacheKey !== undefined
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
// A wanted key written with escapes (`"prompt\u005fcache_key"`) is at most 6 bytes a character.
const LONGEST_ESCAPED_WANTED_KEY = 6 * LONGEST_WANTED_KEY
// A lone surrogate (`"\ud800"`) is valid JSON but no text: UTF-8 has no bytes for it, so it can
// be neither hashed into a derived session id nor kept in Redis as itself. It names no session.
const LONE_SURROGATE = /\p{Cs}/u
// Each value becomes a store key (in Redis too) for the session's idle TTL: a megabyte-long
// prompt_cache_key would be kept as one. OpenAI's ids are ~50 characters; twice the 256 a
// session-id header may hold leaves room for any real key.
const LONGEST_ID = 512

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
    const key = wantedKey(body, i + 1, keyEnd)
    i = skipWhitespace(body, keyEnd + 1)
    if (body[i] !== COLON) return fields
    const valueStart = skipWhitespace(body, i + 1)
    const valueEnd = endOfValue(body, valueStart)
    if (valueEnd === -1) return fields
    if (key !== undefined) {
      // JSON.parse keeps the last of duplicate keys, so a later value replaces an earlier one,
      // and a later value that is not a usable id clears it.
      const value = decodeFieldValue(body, valueStart, valueEnd, key)
      if (value !== undefined) fields[key] = value
      else delete fields[key]
    }
    i = skipWhitespace(body, valueEnd)
    if (body[i] !== COMMA) return fields
    i = skipWhitespace(body, i + 1)
  }
}

/**
 * The wanted field named by the key string between `start` and `end` (its quotes excluded), as
 * JSON.parse reads it: an unescaped short key is looked up as is; one with escapes is decoded
 * first, so `"prompt\u005fcache_key"` is the field the upstream will see.
 */
function wantedKey (body: Buffer, start: number, end: number): keyof SessionFields | undefined {
  const length = end - start
  if (length > LONGEST_ESCAPED_WANTED_KEY) return undefined
  // Multi-byte UTF-8 read as latin1 gives characters above 0x7f, never an ASCII wanted key.
  if (!hasBackslash(body, start, end)) return length <= LONGEST_WANTED_KEY ? WANTED.get(body.toString('latin1', start, end)) : undefined
  let key: unknown
  try {
    key = JSON.parse(body.toString('utf8', start - 1, end + 1))
  } catch {
    return undefined
  }
  return typeof key === 'string' ? WANTED.get(key) : undefined
}

function hasBackslash (body: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (body[i] === BACKSLASH) return true
  return false
}

function decodeFieldValue (body: Buffer, start: number, end: number, key: keyof SessionFields): string | undefined {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8', start, end))
  } catch {
    return undefined
  }
  if (key === 'conversation' && value !== null && typeof value === 'object') value = (value as { id?: unknown }).id
  return typeof value === 'string' && value !== '' && value.length <= LONGEST_ID && !LONE_SURROGATE.test(value) ? value : undefined
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
