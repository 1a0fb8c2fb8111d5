/**
 * The whole messages of one direction of a WebSocket waiting for their turn at its
 * MessageInflater: compressed ones are inflated one at a time, in the order they were sent (the
 * sender's window runs through them all), and plain ones pushed behind them wait their turn so
 * that what reads them sees every message in order. The bytes waiting here, compressed or plain, are bounded;
 * when the connection closes, what is queued is still inflated, then the inflater is freed.
 * Used by both readers of a WebSocket's messages: TextMessages (the upstream's events) and
 * RequestMessages (the client's requests).
 */
import { MessageInflater, type DeflateParams } from './message-inflater.js'

/** A whole message, as the queue needs it. */
export interface InflateJob {
  /** RSV1: its payload is deflated. A plain one only keeps its place in the order. */
  readonly compressed: boolean
  /** Its (unmasked) payload; a compressed one's parts are handed to the inflater, then let go. */
  parts: Buffer[]
  /**
   * The bytes it holds while it waits, counted against the bound: a compressed one's (all of
   * them), a plain one's kept to be read.
   */
  bytes: number
}

export interface InflateQueueOptions<J extends InflateJob> {
  /** The compression agreed for the direction; needed once a compressed job is pushed. */
  deflate: DeflateParams | undefined
  /** Bytes allowed to wait for the inflater, compressed or plain (see `fits`). */
  maxQueuedBytes: number
  /** A chunk of the job being inflated, in order. */
  onData: (job: J, chunk: Buffer) => void
  /** A job's turn is over: a compressed one is inflated whole, a plain one has its place. In the order pushed. */
  onDone: (job: J) => void
  /** The data was not valid deflate or inflated past the bound: the inflater is unusable (call `stop`). */
  onError: () => void
}

export class InflateQueue<J extends InflateJob> {
  readonly #options: InflateQueueOptions<J>
  readonly #jobs: J[] = []
  /** Bytes of the jobs waiting (not the one inflating). */
  #queuedBytes = 0
  #inflater: MessageInflater | undefined
  #inflating = false
  /** The connection closed: what is queued is inflated, then the queue stops. */
  #finishing = false
  #stopped = false

  constructor (options: InflateQueueOptions<J>) {
    this.#options = options
  }

  /** Nothing is waiting or inflating (true once stopped). */
  get settled (): boolean {
    return this.#stopped || (!this.#inflating && this.#jobs.length === 0)
  }

  /** Stopped for good: by `stop`, or once `finish` has drained it. Nothing more is inflated or handed on. */
  get stopped (): boolean {
    return this.#stopped
  }

  /** New messages may still come: neither stopped nor finishing. */
  get open (): boolean {
    return !this.#stopped && !this.#finishing
  }

  /**
   * Whether a message of `bytes` may wait behind what is queued: a compressed one still
   * arriving, or a plain one about to be pushed (behind a compressed one it waits too).
   */
  fits (bytes: number): boolean {
    return this.#queuedBytes + bytes <= this.#options.maxQueuedBytes
  }

  push (job: J): void {
    if (this.#stopped) return
    this.#jobs.push(job)
    this.#queuedBytes += job.bytes
    this.#next()
  }

  /** No more jobs come: those queued are still inflated and handed on, then the queue stops. */
  finish (): void {
    this.#finishing = true
    if (!this.#inflating && this.#jobs.length === 0) this.stop()
  }

  /** Stops at once: what is queued is dropped and the inflater freed. */
  stop (): void {
    this.#stopped = true
    this.#jobs.length = 0
    this.#inflater?.destroy()
    this.#inflater = undefined
  }

  #next (): void {
    while (!this.#inflating && !this.#stopped) {
      const job = this.#jobs.shift()
      if (job === undefined) {
        if (this.#finishing) this.stop()
        return
      }
      this.#queuedBytes -= job.bytes
      if (!job.compressed) {
        this.#options.onDone(job)
        continue
      }
      this.#inflate(job)
    }
  }

  #inflate (job: J): void {
    this.#inflating = true
    this.#inflater ??= new MessageInflater(this.#options.deflate!, this.#options.onError)
    const parts = job.parts
    job.parts = [] // a job may outlive its turn (a request waits for its answer): its bytes need not
    this.#inflater.inflate(parts, (chunk) => this.#options.onData(job, chunk), () => {
      if (this.#stopped) return
      this.#inflating = false
      this.#options.onDone(job)
      this.#next()
    })
  }
}
