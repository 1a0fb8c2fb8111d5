/**
 * Whether a Chat Completions message is an instruction (role `system` or `developer`), read
 * from its members' tokens as the prefix tap crosses them: the tap says where a message
 * starts, which bytes between its members it met, and which short strings (keys and values)
 * directly inside it ended. Nothing is parsed.
 */

const NO_ROLE = 0
const INSTRUCTION = 1
const OTHER = 2

// What a short string directly inside a message names.
const OTHER_NAME = 0
const ROLE_KEY = 1
/** `system` or `developer`: a chat call's prefix, as `instructions` is a Responses call's. */
const INSTRUCTION_ROLE = 2
const NAMES: ReadonlyArray<readonly [Buffer, number]> = [[Buffer.from('role'), ROLE_KEY], [Buffer.from('system'), INSTRUCTION_ROLE], [Buffer.from('developer'), INSTRUCTION_ROLE]]

/** Longer raw strings name no role (`"\u0064eveloper"` in escapes is 54 bytes). */
const MAX_MEMBER_BYTES = 64

const BACKSLASH = 0x5c

export class MessageRole {
  /** The message is an object: only then has it members (an array or a scalar is no message). */
  #object = false
  /** The next string directly inside the message is a key. */
  #expectKey = false
  /** The last key was `role`, and its value has not been read. */
  #roleNext = false
  #state = NO_ROLE

  /** A message begins: an object (`{`) or another container. */
  start (isObject: boolean): void {
    this.#object = isObject
    this.#expectKey = true
    this.#roleNext = false
    this.#state = NO_ROLE
  }

  /** Whether strings directly inside the message are its members' keys and values. */
  get inObject (): boolean {
    return this.#object
  }

  /**
   * Each `role` it has is `system` or `developer` (a repeated key counts each time, so a
   * message is never taken for an instruction that `JSON.parse` would read otherwise).
   */
  get isInstruction (): boolean {
    return this.#state === INSTRUCTION
  }

  // Each event returns whether it made the message known not to be an instruction.

  /** A byte directly inside the message, outside its strings and not whitespace: `,`, `:` or a scalar's. */
  punctuation (byte: number): boolean {
    if (byte === 0x2c) {
      this.#expectKey = true
      this.#roleNext = false
      return false
    }
    if (byte === 0x3a) {
      this.#expectKey = false
      return false
    }
    return this.#value(OTHER_NAME) // a number, true, false or null
  }

  /** A member's value opens an object or an array. */
  container (): boolean {
    return this.#value(OTHER_NAME)
  }

  /**
   * A string directly inside the message ended: its raw bytes (escapes unresolved, no quotes)
   * are `raw` from `from`, `length` of them (past MAX_MEMBER_BYTES, only counted).
   */
  string (raw: Uint8Array, from: number, length: number): boolean {
    if (this.#expectKey) {
      this.#roleNext = nameOf(raw, from, length) === ROLE_KEY
      return false
    }
    return this.#roleNext && this.#value(nameOf(raw, from, length))
  }

  /** A member's value: a role when the key was `role` (a value that is not a string names nothing). */
  #value (name: number): boolean {
    if (!this.#roleNext) return false
    this.#roleNext = false
    if (name !== INSTRUCTION_ROLE) this.#state = OTHER
    else if (this.#state === NO_ROLE) this.#state = INSTRUCTION
    return this.#state === OTHER
  }
}

/** What a short JSON string names, from its raw bytes (without quotes): compared as bytes, no string made unless it has escapes. */
function nameOf (raw: Uint8Array, from: number, length: number): number {
  if (length > MAX_MEMBER_BYTES) return OTHER_NAME
  let escaped = false
  for (let i = from; i < from + length && !escaped; i++) escaped = raw[i] === BACKSLASH
  if (escaped) return nameOfEscaped(Buffer.from(raw.buffer, raw.byteOffset + from, length).toString('latin1'))
  for (const [bytes, name] of NAMES) {
    if (bytes.length !== length) continue
    let same = true
    for (let i = 0; i < length && same; i++) same = raw[from + i] === bytes[i]
    if (same) return name
  }
  return OTHER_NAME
}

function nameOfEscaped (raw: string): number {
  let text: unknown
  try {
    text = JSON.parse(`"${raw}"`)
  } catch {
    return OTHER_NAME
  }
  return text === 'role' ? ROLE_KEY : text === 'system' || text === 'developer' ? INSTRUCTION_ROLE : OTHER_NAME
}
