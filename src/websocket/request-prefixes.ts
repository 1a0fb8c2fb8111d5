/**
 * Which request each response on a WebSocket answers, and that request's prefix fingerprint
 * (cache analysis). Responses answer the client's `response.create` messages in the order they
 * were sent, so the unanswered ones wait in a queue: a response's usage takes the fingerprint
 * of the oldest, and its terminal event (`response.completed`, `…failed`, `error`, …) removes
 * it. Other client messages (`response.processed`, …) start no response and are passed over.
 *
 * Only the top-level fields are read, as in an HTTP body; a `response.create` that nests them
 * under `response` (the Realtime API's shape, which no Responses client sends) has none at its
 * top level and gets no fingerprint rather than a false one.
 */
import type { DeflateParams } from './message-inflater.js'
import { RequestMessages, type RequestMessage } from './request-messages.js'

/** Messages sent and not yet answered past this many: the client is not pairing requests and responses as expected. */
const MAX_UNANSWERED = 64

/** A waiting question: a response's usage wants its request's fingerprint, or a response ended. */
type Waiter = ((fingerprint: string | null) => void) | typeof ANSWERED
const ANSWERED = Symbol('answered')
/** The oldest message is still being inflated: its type is not known yet. */
const NOT_YET = Symbol('not yet')

export class RequestPrefixes {
  /** The client direction's frames go here. */
  readonly frames: RequestMessages
  /** Client messages in the order sent, from the oldest not yet answered. */
  readonly #messages: RequestMessage[] = []
  /** Questions asked while the oldest message was still inflating, in order. */
  readonly #waiting: Waiter[] = []
  #lost = false

  constructor (deflate: DeflateParams | undefined) {
    this.frames = new RequestMessages({
      deflate,
      onMessage: (message) => this.#add(message),
      onWhole: () => this.#settle(),
      onLost: () => this.#lose()
    })
  }

  /**
   * The fingerprint of the request the response now ending answers: the oldest unanswered
   * `response.create`. Null when it is unknown (not read, not one JSON object, or no fields
   * at its top level). Resolves at once unless that message is still being inflated.
   */
  async ofCurrentResponse (): Promise<string | null> {
    if (this.#lost) return null
    return await new Promise((resolve) => {
      this.#waiting.push(resolve)
      this.#settle()
    })
  }

  /** A response ended: the request it answered is done with. */
  answered (): void {
    if (this.#lost) return
    this.#waiting.push(ANSWERED)
    this.#settle()
  }

  /** The connection closed: what is still inflating is read to its end, then the inflater is freed. */
  finish (): void {
    this.frames.finish()
  }

  #add (message: RequestMessage): void {
    if (this.#lost) return
    if (this.#messages.length >= MAX_UNANSWERED) return this.#lose()
    this.#messages.push(message)
  }

  /** Answers the waiting questions in order, as far as the messages read so far allow. */
  #settle (): void {
    while (this.#waiting.length > 0) {
      const create = this.#oldestCreate()
      if (create === NOT_YET) return
      const waiter = this.#waiting.shift()!
      if (waiter !== ANSWERED) waiter(create === undefined ? null : fingerprintOf(create))
      else if (create !== undefined) this.#messages.shift()
    }
  }

  /** The oldest unanswered `response.create`, passing over (and dropping) other messages before it. */
  #oldestCreate (): RequestMessage | undefined | typeof NOT_YET {
    for (;;) {
      const oldest = this.#messages[0]
      if (oldest === undefined) return undefined
      if (!oldest.whole) return NOT_YET
      if (oldest.tap.result()?.type === 'response.create') return oldest
      this.#messages.shift()
    }
  }

  /** Reading stopped: every question, now and later, is answered "unknown". */
  #lose (): void {
    this.#lost = true
    this.#messages.length = 0
    for (const waiter of this.#waiting.splice(0)) if (waiter !== ANSWERED) waiter(null)
  }
}

function fingerprintOf (message: RequestMessage): string | null {
  const prefix = message.tap.result()
  return prefix?.hasPrefixFields === true ? prefix.fingerprint : null
}
