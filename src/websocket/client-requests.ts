/**
 * Which of a WebSocket client's messages are requests (REQUEST_TYPES), which of those the
 * upstream has answered, and the prefix fingerprint of the one a response answers (cache
 * analysis). Only a request starts a response the client awaits; other client messages
 * (`response.processed`, `response.steer`, types this code does not know, messages that are
 * not JSON) are relayed all the same but owe nothing, so shutdown need not wait for them and
 * tracing opens no response span for them.
 *
 * A message's type is read from the message (RequestMessages: an unmasked copy, inflated when
 * compressed), so it is known only once the message has passed whole: until then it counts as
 * owed. Types are read in the order the messages were sent, when an upstream event asks or a
 * compressed message has been inflated, and each request is then reported once.
 * Responses answer requests in the order they came, so a response's usage takes the oldest
 * unanswered one, and its terminal event (`response.completed`, `…failed`, `error`, …) answers
 * it; an event pairs only with a message sent whole before it came, and waits while such a
 * message is still unread (inflating).
 *
 * Only the top-level fields are read, as in an HTTP body; a `response.create` that nests them
 * under `response` (the Realtime API's shape, which no Responses client sends) has none at its
 * top level and gets no fingerprint rather than a false one; so does a `response.append`, which
 * carries only input items.
 */
import type { RequestPrefix } from '../observe/prefix-fingerprint.js'
import type { DeflateParams } from './message-inflater.js'
import { RequestMessages, type RequestMessage } from './request-messages.js'

/** Messages owed (unread or unanswered) past this many: the client is not pairing requests and responses as expected. */
const MAX_UNANSWERED = 64

/**
 * The client messages the upstream answers with a response of their own: `response.create`,
 * and `response.append`, which codex sends in its place when a request only adds input items
 * to the previous one (the answer is a whole response all the same). A steered continuation
 * is the upstream's own response, waited for from its `response.created` (the tunnel does).
 */
const REQUEST_TYPES: ReadonlySet<string | undefined> = new Set(['response.create', 'response.append'])

export interface ClientRequestsOptions {
  /** Cache analysis reads each request's prefix (the default); false: only each message's `type` is read. */
  readsPrefixes?: boolean
  /** A request (REQUEST_TYPES) was read: a model call began at `startedAt` (its first frame, `performance.now()` time). In order. */
  onRequest?: ((startedAt: number) => void) | undefined
  /** `idle` may have changed with no call in progress (a message inflated, reading lost). */
  onChange?: (() => void) | undefined
}

/** A message and its place in the order sent. */
interface Sent {
  message: RequestMessage
  seq: number
}

/** What an upstream event asks of the messages sent whole before it came (those numbered below `before`). */
type Question =
  | { before: number, prefix: (value: RequestPrefix | undefined) => void }
  | { before: number, answered: (() => void) | undefined }

export class ClientRequests {
  /** The client direction's frames go here. */
  readonly frames: RequestMessages
  readonly #options: ClientRequestsOptions
  /** Messages begun whose type is not read yet, in order. */
  readonly #unread: Sent[] = []
  /** Requests read and not yet answered, in order. */
  readonly #requests: Sent[] = []
  /** Questions that wait for an unread message, in order. */
  readonly #questions: Question[] = []
  #started = 0
  /** Messages whose last frame has passed: the first `#ended` of the order sent. */
  #ended = 0
  #lost = false

  constructor (deflate: DeflateParams | undefined, options: ClientRequestsOptions = {}) {
    this.#options = options
    this.frames = new RequestMessages({
      deflate,
      typesOnly: options.readsPrefixes === false,
      onStart: (message) => this.#start(message),
      onEnd: () => { this.#ended++ },
      onWhole: () => this.#changed(),
      onLost: () => this.#lose()
    })
  }

  /**
   * Nothing is owed: every message begun has been read and is not a request, or has
   * been answered. Never once the messages cannot be followed (nothing is known any more).
   */
  get idle (): boolean {
    if (this.#lost) return false
    this.#catchUp()
    return this.#unread.length === 0 && this.#requests.length === 0
  }

  /** An upstream event is about to be read: the messages sent before it are read first, as far as they can be. */
  beforeEvent (): void {
    if (!this.#lost && this.#unread.length > 0) this.#catchUp()
  }

  /**
   * The prefix of the request the response now ending answers: the oldest unanswered request.
   * Undefined when it is unknown (not read, not one JSON object, or no fields at its top
   * level). Resolves at once unless a message before it is still being inflated.
   */
  async ofCurrentResponse (): Promise<RequestPrefix | undefined> {
    if (this.#lost) return undefined
    return await new Promise((resolve) => this.#ask({ before: this.#ended, prefix: resolve }))
  }

  /** A response ended: the request it answered is done with; then `then`, once that request is known. */
  answered (then?: () => void): void {
    if (this.#lost) return then?.()
    this.#ask({ before: this.#ended, answered: then })
  }

  /** The connection closed: what can be read now is; what is still inflating is read to its end, then the inflater is freed. */
  finish (): void {
    if (!this.#lost) this.#catchUp()
    this.frames.finish()
  }

  #start (message: RequestMessage): void {
    if (this.#lost) return
    // A client far ahead of its answers: what can be read is read before the count is judged.
    if (this.#unread.length + this.#requests.length >= MAX_UNANSWERED) this.#catchUp()
    if (this.#unread.length + this.#requests.length >= MAX_UNANSWERED) return this.#lose()
    this.#unread.push({ message, seq: this.#started++ })
  }

  #ask (question: Question): void {
    this.#questions.push(question)
    this.#catchUp()
  }

  #changed (): void {
    if (this.#lost) return
    this.#catchUp()
    this.#options.onChange?.()
  }

  #catchUp (): void {
    this.#read()
    this.#settle()
  }

  /** Reads the types of the oldest messages, as far as they have passed whole: each request (REQUEST_TYPES) is queued and reported. */
  #read (): void {
    while (this.#unread.length > 0) {
      const sent = this.#unread[0]!
      if (!sent.message.whole) return
      this.#unread.shift()
      if (!REQUEST_TYPES.has(sent.message.tap.type())) continue
      this.#requests.push(sent)
      this.#options.onRequest?.(sent.message.startedAt)
    }
  }

  /** Answers the waiting questions in order, as far as the messages read so far allow. */
  #settle (): void {
    while (this.#questions.length > 0) {
      const question = this.#questions[0]!
      const oldest = this.#requests[0]
      const request = oldest !== undefined && oldest.seq < question.before ? oldest : undefined
      // Unread messages come after every request read: one sent before the event may be its request.
      const unread = this.#unread[0]
      if (request === undefined && unread !== undefined && unread.seq < question.before) return
      this.#questions.shift()
      if ('prefix' in question) {
        question.prefix(request === undefined ? undefined : prefixOf(request.message))
      } else {
        if (request !== undefined) this.#requests.shift()
        question.answered?.()
      }
    }
  }

  /** Reading stopped: every question, now and later, is answered "unknown"; nothing is idle again. */
  #lose (): void {
    if (this.#lost) return
    this.#lost = true
    this.frames.stop() // nothing read from now on could be paired
    this.#unread.length = 0
    this.#requests.length = 0
    for (const question of this.#questions.splice(0)) {
      if ('prefix' in question) question.prefix(undefined)
      else question.answered?.()
    }
    this.#options.onChange?.()
  }
}

function prefixOf (message: RequestMessage): RequestPrefix | undefined {
  const prefix = message.tap.result()
  return prefix?.hasPrefixFields === true ? prefix : undefined
}
