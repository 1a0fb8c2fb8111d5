import { FieldDigest, TextDigest } from './field-digest.js'
import { INPUT_HEAD_BYTES, InputHead, type InputHistory } from './input-history.js'
import { MessageRole } from './message-role.js'

/**
 * A request's prompt-cache prefix, as far as the gateway can see it: a fingerprint of its
 * top-level `model`, `instructions` and `tools`, its structured-output schema (a Responses
 * call's `text`, a Chat Completions call's `response_format`), its reasoning effort (a
 * Responses call's `reasoning`, a chat call's `reasoning_effort`) and a chat call's
 * `verbosity` — and, for a chat call, whose instructions are its leading system and
 * developer messages, of `messages` up to the end of the last of those (at least of its
 * first message) — and the model's name.
 */
export interface RequestPrefix {
  /** 16 hex digits; equal for equal values of the fields, whatever their order. */
  fingerprint: string
  /** The top-level `model` string; undefined when absent or not a string. */
  model: string | undefined
  /** Whether any of the fields was at the top level: a fingerprint of none says little. */
  hasPrefixFields: boolean
  /**
   * The top-level `type` string (not in the fingerprint): what a WebSocket client message is,
   * e.g. `response.create`; an HTTP body has none.
   */
  type: string | undefined
  /**
   * The first bytes of a top-level `input` array or string (not in the fingerprint: it grows
   * every turn), for the next call to tell whether its input goes on from this one
   * (input-history.ts). Undefined without one, and for a call whose prompt holds what the
   * upstream keeps (`previous_response_id`, `conversation`: `input` is only the new turn; a
   * stored `prompt`), which its bytes cannot show.
   */
  input: InputHistory | undefined
}

/**
 * The fingerprint's fields by index, `type` (read, not fingerprinted), `messages` (a chat
 * call's: only its leading instructions are fingerprinted, see #endMessage), then the
 * settings the upstream renders into the system or developer prefix, see FIRST_SETTING:
 * the structured-output schema, `response_format` (chat) and `text` (Responses: its `format`
 * and `verbosity`), and the reasoning effort, `reasoning` (Responses: its `effort` and
 * `summary`) and `reasoning_effort` (chat), and chat's `verbosity`. Objects are hashed whole,
 * as `tools` is: a key inside them is not looked for.
 */
const FIELDS = ['model', 'instructions', 'tools', 'type', 'messages', 'response_format', 'text', 'reasoning', 'reasoning_effort', 'verbosity'] as const
const TYPE = 3
/** Hashed from its start to the end of its first message. */
const MESSAGES = 4
/**
 * From here on, fields that joined the fingerprint after records were stored: each is in it
 * only when present, so a body without them keeps the fingerprint it had.
 */
const FIRST_SETTING = 5
/**
 * No key's: a message after instructions, hashed from the end of the one before it until it
 * is known whether it is one too (kept then, dropped otherwise).
 */
const NEXT_MESSAGE = FIELDS.length
const NONE = -1
/**
 * Top-level keys read but not fingerprinted: `input`, whose first bytes are kept
 * (RequestPrefix.input), and the keys that put what the upstream keeps into the prompt.
 */
const NOTED = ['input', 'previous_response_id', 'conversation', 'prompt'] as const
/** `input`'s value is kept while #field is this. */
const INPUT = 100
/** The first of the keys for upstream content: one bit each in #upstreamContent. */
const UPSTREAM_CONTENT = 101
const NOTED_AS = [INPUT, UPSTREAM_CONTENT, UPSTREAM_CONTENT + 1, UPSTREAM_CONTENT + 2]
/** Longer keys are none of these: the longest name written wholly in `\uXXXX` escapes, six bytes a character. */
const MAX_KEY_BYTES = 6 * Math.max(...[...FIELDS, ...NOTED].map((key) => key.length))
/**
 * A tap's key buffer until a longer key (written with escapes) needs more: V8 keeps a typed
 * array of up to 64 bytes on its heap (~20 ns to make), a longer one off it (~250 ns).
 */
const KEY_BYTES_FIRST = 64

// Where the reader is between two bytes.
/** Before the body's opening brace. */
const BEFORE = 0
/** In the top-level object, between its tokens. */
const TOP = 1
/** Inside a top-level key. */
const KEY = 2
/** Inside a top-level string value. */
const STRING = 3
/** Inside a top-level object or array value (depth 2 and more), outside its strings. */
const NESTED = 4
/** Inside a string within such a value. */
const NESTED_STRING = 5
/** Inside a top-level number, true, false or null. */
const SCALAR = 6
/** After the body's closing brace: only whitespace may follow. */
const AFTER = 7
const FAILED = 8
/** A type-only tap has read the top-level `type`: nothing after it is looked at. */
const TYPE_READ = 9

const QUOTE = 0x22
const BACKSLASH = 0x5c
/**
 * In a run of escaped quotes (JSON or code pasted into a message) the next quote is near:
 * looking at this many bytes in a loop costs less than another native `indexOf`.
 */
const NEAR_BYTES = 24

/**
 * A tap on a JSON request body (or a WebSocket client message: the same fields, next to its
 * `type`) as its chunks pass upstream: a small tokenizer that tracks strings and depth, and
 * feeds the bytes of the wanted top-level values into a hash each (and copies the first 3 KiB
 * of `input`, RequestPrefix.input). It never delays or parses the body. Nested values (the
 * `input` history, most of a body) are crossed by a loop that looks only at quotes and
 * brackets; strings are crossed with native `indexOf` jumps from quote to quote.
 *
 * Values are hashed as written (whitespace inside them counts); of duplicate keys the last
 * counts, as with `JSON.parse`; escaped keys (`"tool\u0073"`) are read as the key they spell.
 * A body that is not shaped as one JSON object (anything but whitespace around it, unbalanced,
 * or ended early) has no prefix; other syntax errors are not looked for: the upstream refuses
 * such a body.
 *
 * Chunks are read when pushed, or held (by reference) and read later with `readHeld`: the
 * caller decides when the reading happens, and `result` reads whatever is still held.
 */
export class PrefixFingerprint {
  /**
   * Only `type` is wanted (a WebSocket client message when cache analysis is off): no other
   * field is hashed, and reading stops at the first top-level `type`.
   */
  readonly #typeOnly: boolean
  #mode = BEFORE
  /** Depth in the top-level value being crossed (NESTED); 2 inside its outer brackets. */
  #depth = 0
  #expectKey = false
  /** The previous chunk ended inside a string on an odd run of backslashes: its first byte is escaped. */
  #escaped = false
  /** The field the key just read names (its value, when it starts, is hashed), or NONE. */
  #pending = NONE
  /** The field whose value is being hashed, or NONE. */
  #field = NONE
  /** Where the part of the current chunk still to be hashed (or kept, for a key) starts. */
  #from = 0
  /** One per field, then NEXT_MESSAGE's. */
  readonly #hashes: Array<FieldDigest | undefined> = [undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined]
  /** The digests of the instruction messages after the first, in order (made for a chat call only). */
  #laterInstructions: string[] | undefined
  /** The role of the message being hashed in `messages` (made when `messages` begins: a Responses call needs none). */
  #role: MessageRole | undefined
  /** A top-level key's bytes, or a message member's string's, escapes unresolved; past MAX_KEY_BYTES only counted. */
  #key: Uint8Array = new Uint8Array(KEY_BYTES_FIRST)
  #keyBytes = 0
  /** The string being crossed is a message member's (its bytes are kept from `#memberFrom`, as a key's). */
  #member = false
  #memberFrom = 0
  /** Chunks held to be read later, and how far the first has been read. */
  #held: Buffer[] = []
  #heldAt = 0
  /** The first bytes of the top-level `input` (an array or a string); undefined without one. */
  #input: InputHead | undefined
  /**
   * A bit for each of `previous_response_id`, `conversation` and `prompt` whose (last) value
   * is not null: any set, the prompt holds what the upstream keeps.
   */
  #upstreamContent = 0
  #result: RequestPrefix | undefined | null = null

  constructor ({ typeOnly = false }: { typeOnly?: boolean } = {}) {
    this.#typeOnly = typeOnly
  }

  /** Nothing more will be read: the body failed to be one object, or a type-only tap has its type. */
  get settled (): boolean {
    return this.#mode === FAILED || this.#mode === TYPE_READ
  }

  /** Reads one chunk now; never throws. */
  push (chunk: Buffer): void {
    if (this.settled || chunk.length === 0) return
    let i = 0
    if (this.#escaped) {
      this.#escaped = false
      i = 1 // the byte a backslash at the end of the last chunk escaped
    }
    this.#from = 0
    this.#memberFrom = 0
    const n = chunk.length
    while (i < n) i = this.#step(chunk, i)
    if (this.#field !== NONE) this.#hashPart(chunk, this.#from, n)
    if (this.#mode === KEY) this.#keepKeyPart(chunk, this.#from, n)
    if (this.#member) this.#keepKeyPart(chunk, this.#memberFrom, n)
  }

  /** Keeps `chunk` (not a copy) to be read by `readHeld` or `result`. */
  hold (chunk: Buffer): void {
    this.#held.push(chunk)
  }

  /** Reads up to `maxBytes` of the held chunks, in order; true when some are still held. */
  readHeld (maxBytes = Infinity): boolean {
    let budget = maxBytes
    while (budget > 0 && this.#held.length > 0) {
      if (this.settled) {
        this.#held.length = 0 // the rest would not be looked at
        this.#heldAt = 0
        break
      }
      const chunk = this.#held[0]!
      const end = Math.min(chunk.length, this.#heldAt + budget)
      this.push(this.#heldAt === 0 && end === chunk.length ? chunk : chunk.subarray(this.#heldAt, end))
      budget -= end - this.#heldAt
      if (end < chunk.length) {
        this.#heldAt = end
      } else {
        this.#held.shift()
        this.#heldAt = 0
      }
    }
    return this.#held.length > 0
  }

  /** The prefix once the whole body has passed (held chunks are read first); undefined when it was not one JSON object. */
  result (): RequestPrefix | undefined {
    if (this.#result !== null) return this.#result
    this.readHeld()
    if (this.#mode !== AFTER) return (this.#result = undefined)
    const [model, instructions, tools, , messages] = this.#hashes
    // The digest of `model:…;instructions:…;tools:…;`, then `messages:…;` only when present: a
    // Responses call's fingerprint is what it was; so are instructions after the first
    // message: one system message's is what it was; and so are the settings (#addSettings).
    const text = new TextDigest().add('model:')
    digestInto(text, model).add(';instructions:')
    digestInto(text, instructions).add(';tools:')
    digestInto(text, tools).add(';')
    if (messages !== undefined) {
      messages.digestInto(text.add('messages:'))
      for (const later of this.#laterInstructions ?? []) text.add('+').add(later)
      text.add(';')
    }
    const settings = this.#addSettings(text)
    this.#result = {
      fingerprint: text.hex(),
      model: shortString(model),
      hasPrefixFields: model !== undefined || instructions !== undefined || tools !== undefined || messages !== undefined || settings,
      type: shortString(this.#hashes[TYPE]),
      input: this.#upstreamContent !== 0 ? undefined : this.#input?.history(this.#prefixBytes())
    }
    return this.#result
  }

  /** The bytes of the fields fingerprinted (all but `type`): the part of the prompt before its `input`. */
  #prefixBytes (): number {
    let bytes = 0
    for (let f = 0; f < this.#hashes.length; f++) if (f !== TYPE) bytes += this.#hashes[f]?.size ?? 0
    return bytes
  }

  /**
   * `name:digest;` of each setting present (FIRST_SETTING on), in FIELDS' order: an absent
   * one adds nothing, so a body without it keeps the fingerprint it had before it was read.
   * True when one was.
   */
  #addSettings (text: TextDigest): boolean {
    let any = false
    for (let f = FIRST_SETTING; f < NEXT_MESSAGE; f++) {
      const digest = this.#hashes[f]
      if (digest === undefined) continue
      digest.digestInto(text.add(FIELDS[f]!).add(':')).add(';')
      any = true
    }
    return any
  }

  /** The top-level `type` string once the whole body has passed (a type-only tap: once it is read). */
  type (): string | undefined {
    this.readHeld()
    return this.#mode === TYPE_READ ? shortString(this.#hashes[TYPE]) : this.result()?.type
  }

  /** Reads from `i` in the current mode; returns where the next step starts. */
  #step (chunk: Buffer, i: number): number {
    switch (this.#mode) {
      case NESTED: return this.#field === MESSAGES || this.#field === NEXT_MESSAGE ? this.#crossMessages(chunk, i) : this.#crossNested(chunk, i)
      case KEY: case STRING: case NESTED_STRING: return this.#crossString(chunk, i)
      case SCALAR: return this.#crossScalar(chunk, i)
      case AFTER: return this.#afterBody(chunk, i)
      case FAILED: case TYPE_READ: return chunk.length
      default: return this.#structure(chunk, i)
    }
  }

  /** Before the body and between the top-level object's tokens: one byte. */
  #structure (chunk: Buffer, i: number): number {
    const c = chunk[i]!
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return i + 1
    if (this.#mode === BEFORE) {
      this.#mode = c === 0x7b ? TOP : FAILED // a body that is not a JSON object has no prefix
      this.#expectKey = true
    } else if (c === QUOTE && this.#expectKey) {
      this.#mode = KEY
      this.#expectKey = false
      this.#keyBytes = 0
      this.#from = i + 1
    } else if (c === QUOTE) {
      this.#startValue(i, STRING)
    } else if (c === 0x7b || c === 0x5b) {
      this.#startValue(i, NESTED, c === 0x5b)
      this.#depth = 2
    } else if (c === 0x7d) {
      this.#mode = AFTER
    } else if (c === 0x2c) {
      this.#expectKey = true
    } else if (c === 0x5d) {
      this.#mode = FAILED
    } else if (c !== 0x3a) {
      this.#startValue(i, SCALAR)
    }
    return i + 1
  }

  /** A top-level value begins at `i`: hashed from here when its key is wanted (a repeated key starts over). */
  #startValue (i: number, mode: number, array = false): void {
    this.#mode = mode
    if (this.#pending === NONE) return
    if (this.#pending >= INPUT) {
      this.#noteValue(i, mode, array)
      return
    }
    this.#field = this.#pending
    this.#pending = NONE
    this.#from = i
    this.#hashes[this.#field] = new FieldDigest()
    if (this.#field === MESSAGES) {
      this.#laterInstructions = undefined
      this.#role ??= new MessageRole()
    }
  }

  /**
   * A noted key's value begins at `i` (NOTED): as with fields, of a repeated key the last
   * counts. An `input` array or string is kept from here as a field is hashed (an object or a
   * scalar is none of the API's), unless the fields before it are as much as a judgement of it
   * can use (input-history.ts).
   */
  #noteValue (i: number, mode: number, array: boolean): void {
    if (this.#pending === INPUT) {
      const kept = (array || mode === STRING) && this.#prefixBytes() < INPUT_HEAD_BYTES
      this.#input = kept ? new InputHead() : undefined
      if (kept) {
        this.#field = INPUT
        this.#from = i
      }
    } else {
      const bit = 1 << (this.#pending - UPSTREAM_CONTENT)
      // null (or another scalar) names nothing
      this.#upstreamContent = mode === SCALAR ? this.#upstreamContent & ~bit : this.#upstreamContent | bit
    }
    this.#pending = NONE
  }

  /** The top-level value being read ends before `end`: back to the object's tokens. */
  #endValue (chunk: Buffer, end: number): void {
    this.#mode = TOP
    if (this.#field === NONE) return
    this.#hashPart(chunk, this.#from, end)
    if (this.#field === INPUT) this.#input!.end(this.#prefixBytes())
    if (this.#typeOnly) this.#mode = TYPE_READ // only `type` is ever hashed in this mode
    this.#field = NONE
  }

  /**
   * Inside a container value: only quotes and brackets matter, so this loop looks at nothing
   * else and crosses strings whole. Returns where the value ends, or the chunk's length.
   */
  #crossNested (chunk: Buffer, i: number): number {
    const n = chunk.length
    let depth = this.#depth
    while (i < n) {
      const c = chunk[i++]!
      if (c === QUOTE) {
        const end = this.#stringEnd(chunk, i, i)
        if (end === -1) {
          this.#mode = NESTED_STRING
          this.#depth = depth
          return n
        }
        i = end + 1
      } else if (c === 0x7b || c === 0x5b) {
        depth++
      } else if ((c === 0x7d || c === 0x5d) && --depth === 1) {
        this.#depth = 1
        this.#endValue(chunk, i)
        return i
      }
    }
    this.#depth = depth
    return n
  }

  /**
   * Inside `messages` while its leading messages are hashed: as #crossNested, and each
   * message's members are read for its role. Returns where the value ends, where the hashing
   * stops (the rest is #crossNested's), or the chunk's length.
   */
  #crossMessages (chunk: Buffer, i: number): number {
    const n = chunk.length
    const role = this.#role! // made when `messages` began
    let depth = this.#depth
    let stop = false
    while (i < n && !stop) {
      const c = chunk[i++]!
      if (c === QUOTE) {
        const member = depth === 3 && role.inObject
        const end = this.#stringEnd(chunk, i, i)
        if (end === -1) {
          this.#mode = NESTED_STRING
          if (member) this.#startMember(i)
          break
        }
        if (member) stop = this.#roleRead(role.string(chunk, i, end - i))
        i = end + 1
      } else if (c === 0x7b || c === 0x5b) {
        if (++depth === 3) role.start(c === 0x7b)
        else if (depth === 4 && role.inObject) stop = this.#roleRead(role.container())
      } else if (c === 0x7d || c === 0x5d) {
        this.#depth = --depth
        if (depth === 1) {
          if (this.#field === NEXT_MESSAGE) this.#dropNextMessage() // what follows the last instruction is not a message
          this.#endValue(chunk, i)
          return i
        }
        if (depth === 2) stop = this.#endMessage(chunk, i)
      } else if (depth === 3 && role.inObject && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        stop = this.#roleRead(role.punctuation(c))
      }
    }
    this.#depth = depth
    return stop ? i : n
  }

  /** A message member's string, from `from`, goes on in the next chunk: its bytes are kept as a key's. */
  #startMember (from: number): void {
    this.#member = true
    this.#keyBytes = 0
    this.#memberFrom = from
  }

  /** A message member's string that began in an earlier chunk ended before `end`: its role may be known now. */
  #endMember (chunk: Buffer, end: number): void {
    this.#keepKeyPart(chunk, this.#memberFrom, end)
    this.#member = false
    this.#roleRead(this.#role!.string(this.#key, 0, this.#keyBytes))
  }

  /**
   * A message's role was just read (`decided`: it is known not to be an instruction's): a
   * message after instructions is then no part of the prefix, and its hashing stops at once.
   * True when it stopped.
   */
  #roleRead (decided: boolean): boolean {
    if (!decided || this.#field !== NEXT_MESSAGE) return false
    this.#dropNextMessage()
    return true
  }

  /**
   * A message in `messages` ended before `end`. The first is hashed whatever its role (a
   * conversation without a system message still has a first message that stays); the next
   * one is too while each before it was an instruction (system, developer) — a chat call's
   * `instructions` — each digested apart, so that a lone system message digests as before
   * later ones were read. The rest of the conversation, which grows each turn, is not hashed.
   * True when the hashing stopped.
   */
  #endMessage (chunk: Buffer, end: number): boolean {
    const instruction = this.#role!.isInstruction
    if (this.#field === MESSAGES || instruction) this.#hashPart(chunk, this.#from, end)
    if (this.#field === NEXT_MESSAGE && instruction) (this.#laterInstructions ??= []).push(this.#hashes[NEXT_MESSAGE]!.digest())
    if (!instruction) {
      this.#dropNextMessage()
      return true
    }
    this.#field = NEXT_MESSAGE
    this.#hashes[NEXT_MESSAGE] = new FieldDigest()
    this.#from = end
    return false
  }

  /** The hashing of `messages` stops: a message after the instructions is no part of the prefix. */
  #dropNextMessage (): void {
    this.#hashes[NEXT_MESSAGE] = undefined
    this.#field = NONE
  }

  /** Inside a key or a string: to just past its closing quote, or to the chunk's end. */
  #crossString (chunk: Buffer, i: number): number {
    const end = this.#stringEnd(chunk, i, i)
    if (end === -1) return chunk.length
    if (this.#mode === NESTED_STRING) {
      this.#mode = NESTED
      if (this.#member) this.#endMember(chunk, end)
    } else if (this.#mode === KEY) {
      this.#keepKeyPart(chunk, this.#from, end)
      this.#endKey()
    } else {
      this.#endValue(chunk, end + 1)
    }
    return end + 1
  }

  /**
   * The index of the quote that ends a string, looking from `i`, or -1 when the chunk ends
   * first (then `#escaped` says whether its last byte opened an escape). `floor` is where the
   * string's bytes in this chunk begin: backslashes before it are not counted.
   */
  #stringEnd (chunk: Buffer, i: number, floor: number): number {
    const n = chunk.length
    // Most strings (keys, roles, types, short values) end within a few bytes: looking costs
    // less than the native call; a long one is jumped with indexOf.
    const first = Math.min(n, i + NEAR_BYTES)
    let k = i
    while (k < first && chunk[k] !== QUOTE) k++
    let q = k < first ? k : chunk.indexOf(QUOTE, first)
    while (q !== -1 && oddBackslashesBefore(chunk, q, floor)) {
      // An escaped quote: in a run of them the next is near, found sooner by looking.
      const near = Math.min(n, q + 1 + NEAR_BYTES)
      let j = q + 1
      while (j < near && chunk[j] !== QUOTE) j++
      q = j < near ? j : chunk.indexOf(QUOTE, near)
    }
    if (q === -1) this.#escaped = oddBackslashesBefore(chunk, n, floor)
    return q
  }

  /** Inside a bare top-level scalar: it ends at whitespace, a comma or a closing brace. */
  #crossScalar (chunk: Buffer, i: number): number {
    const n = chunk.length
    while (i < n) {
      const c = chunk[i]!
      if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        this.#endValue(chunk, i)
        return i // the delimiter is the object's to read
      }
      i++
    }
    return n
  }

  /** After the closing brace: anything but whitespace means the body was not one JSON object. */
  #afterBody (chunk: Buffer, i: number): number {
    const c = chunk[i]!
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) this.#mode = FAILED
    return i + 1
  }

  #keepKeyPart (chunk: Buffer, from: number, end: number): void {
    const bytes = this.#keyBytes + end - from
    if (bytes <= MAX_KEY_BYTES) {
      if (bytes > this.#key.length) this.#key = grown(this.#key, this.#keyBytes, MAX_KEY_BYTES)
      this.#key.set(chunk.subarray(from, end), this.#keyBytes)
    }
    this.#keyBytes = bytes
  }

  #endKey (): void {
    this.#mode = TOP
    const field = this.#keyBytes > MAX_KEY_BYTES ? NONE : fieldOf(this.#key, this.#keyBytes)
    this.#pending = this.#typeOnly && field !== TYPE ? NONE : field
  }

  #hashPart (chunk: Buffer, from: number, end: number): void {
    if (end <= from) return
    if (this.#field === INPUT) this.#input!.update(chunk.subarray(from, end))
    else this.#hashes[this.#field]!.update(chunk.subarray(from, end))
  }
}

/** A field's digest, or `-` for a field the body does not have. */
function digestInto (text: TextDigest, digest: FieldDigest | undefined): TextDigest {
  return digest === undefined ? text.add('-') : digest.digestInto(text)
}

/** A short string value, from its digest's bytes: a value too long for a name (or not a string) has none. */
function shortString (digest: FieldDigest | undefined): string | undefined {
  const raw = digest?.shortValue()
  if (raw === undefined || raw.length < 2 || raw[0] !== QUOTE) return undefined
  const text = raw.toString('utf8')
  let plain = raw[raw.length - 1] === QUOTE
  for (let i = 1; i < raw.length - 1 && plain; i++) plain = raw[i] !== BACKSLASH && raw[i]! >= 0x20
  if (plain) return text.slice(1, -1) // what JSON.parse would give, without its call
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

/** A `size`-byte copy of the first `length` bytes of `bytes`. */
function grown (bytes: Uint8Array, length: number, size: number): Uint8Array {
  const copy = new Uint8Array(size)
  copy.set(bytes.subarray(0, length))
  return copy
}

/** Whether the backslashes right before `end` (not before `floor`) are an odd run. */
function oddBackslashesBefore (chunk: Buffer, end: number, floor: number): boolean {
  let at = end - 1
  while (at >= floor && chunk[at] === BACKSLASH) at--
  return (end - 1 - at) % 2 === 1
}

/** Every key read at the top level, and what each is: a field's index, or NOTED_AS's code. */
const KEYS: readonly string[] = [...FIELDS, ...NOTED]
const KEY_CODES = [...FIELDS.map((_, f) => f), ...NOTED_AS]
const KEY_BYTES = KEYS.map((key) => Buffer.from(key))

/** The field or noted key a top-level key names (its first `length` raw bytes, escapes unresolved), or NONE. */
function fieldOf (key: Uint8Array, length: number): number {
  let escaped = false
  for (let i = 0; i < length; i++) if (key[i] === BACKSLASH) escaped = true
  if (!escaped) {
    // Compared as bytes: no string is made for the many keys that are none of the fields.
    for (let k = 0; k < KEY_BYTES.length; k++) {
      const name = KEY_BYTES[k]!
      if (name.length !== length) continue
      let same = true
      for (let i = 0; i < length && same; i++) same = key[i] === name[i]
      if (same) return KEY_CODES[k]!
    }
    return NONE
  }
  try {
    const name = JSON.parse(`"${Buffer.from(key.buffer, key.byteOffset, length).toString('latin1')}"`) as string
    const k = KEYS.indexOf(name)
    return k === -1 ? NONE : KEY_CODES[k]!
  } catch {
    return NONE
  }
}
