import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../errors.js'
import { discardUnreadBody } from '../http/unread-body.js'
import { clientReasonPhrase, clientResponseHeaders } from './response-headers.js'
import { classifyUpstreamFailure, type FailureKind, type UpstreamFailure } from './upstream-failure.js'

/** Who ended the exchange: it ran to its end, the client left, or the upstream failed. */
export type EndedBy = 'complete' | 'client' | 'upstream' | 'gateway'

export interface RelayOutcome {
  /** Status the client got (the upstream's, or the gateway's own 502/504); 0 when it got none. */
  status: number
  endedBy: EndedBy
  failure?: { kind: FailureKind, code: string }
  /** The gateway's own error that stopped the request (its body over BODY_LIMIT, or stalled past SERVER_REQUEST_TIMEOUT_MS). */
  stoppedWith?: string
  /** Milliseconds from the start of the exchange to the upstream's response headers; -1 when none came. */
  ttfbMs: number
  /** Body bytes written to the client. */
  bytesOut: number
}

/** Sees the upstream's response bytes as they pass; must not throw and must not keep them. */
export interface ResponseTap {
  onResponseStart (status: number, headers: string[]): void
  onChunk (chunk: Buffer): void
  /** The whole body has been written to the client. */
  onResponseEnd (): void
}

/**
 * Decides, before anything of an attempt's answer reaches the client, whether to relay it or
 * to drop it and try another upstream (several upstreams: src/proxy/attempts.ts). On `retry`
 * the relay writes nothing, lets go of the client's response and aborts its upstream request;
 * whoever said `retry` owns the response from then on.
 */
export interface FailoverGate {
  /** The upstream's status line and headers arrived (not 1xx). */
  onStatus (statusCode: number, rawHeaders: Buffer[]): 'relay' | 'retry'
  /** The upstream failed before its headers (connect error, reset, timeout). */
  onFailure (failure: UpstreamFailure): 'relay' | 'retry'
}

/**
 * An undici dispatch handler that writes the upstream's response to the client as it arrives:
 * headers once, then every chunk untouched, pausing the upstream while the client's socket is
 * full. It tears the client connection down when the upstream fails mid-body, so a truncated
 * stream never looks complete, and aborts the upstream when the client leaves.
 *
 * It implements undici 7's native (onConnect/onHeaders/onData) interface: the controller-style
 * one is a wrapper over it that would parse every header block into an object first.
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse
  readonly #startedAt: number
  readonly #onEnd: (outcome: RelayOutcome) => void
  readonly #tap: ResponseTap | undefined
  #gate: FailoverGate | undefined
  readonly #onClientClose: () => void
  readonly #onClientDrain: () => void
  /** The gate took this attempt's answer away: nothing more of it is the client's. */
  #handedOver = false
  #abortUpstream: ((err: Error) => void) | undefined
  #resumeUpstream: (() => void) | undefined
  #clientGone = false
  /** The connection a queued response watches for the client leaving (see #watchConnection). */
  #queuedOn: Socket | undefined
  #ended = false
  #ttfbMs = -1
  #bytesOut = 0

  constructor (res: ServerResponse, startedAt: number, onEnd: (outcome: RelayOutcome) => void, tap?: ResponseTap, gate?: FailoverGate) {
    this.#res = res
    this.#startedAt = startedAt
    this.#onEnd = onEnd
    this.#tap = tap
    this.#gate = gate
    this.#onClientClose = () => {
      if (res.writableFinished || this.#clientGone) return
      this.#clientGone = true
      this.#abortUpstream?.(new ClientGoneError())
      // A client that leaves before undici reached onConnect is settled here; the request
      // is aborted as soon as undici hands it a socket.
      this.#end(this.#statusSent(), 'client')
    }
    this.#onClientDrain = () => this.#resumeUpstream?.()
    res.on('close', this.#onClientClose)
    res.on('drain', this.#onClientDrain)
    if (res.socket === null) this.#watchConnection(res)
  }

  /**
   * A response queued behind an earlier pipelined one has no socket yet, and Node never emits
   * its 'close' when the client leaves (it destroys only the request): the connection's own
   * 'close' says so instead. Only for such a response, so the common path adds no listener.
   */
  #watchConnection (res: ServerResponse): void {
    const connection = res.req.socket as Socket | null
    if (connection === null || connection.destroyed) {
      this.#onClientClose()
      return
    }
    connection.once('close', this.#onClientClose)
    this.#queuedOn = connection
  }

  onConnect (abort: (err?: Error) => void): void {
    if (this.#clientGone || this.#handedOver) {
      abort(new ClientGoneError())
      return
    }
    this.#abortUpstream = abort
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true // 1xx interim responses are the upstream connection's business
    if (this.#handedOver) return false
    if (this.#gate?.onStatus(statusCode, rawHeaders) === 'retry') {
      this.#handOver()
      return false
    }
    // Decided: this answer is the client's, and nothing more is asked of the gate. Dropping it
    // lets the attempts (and the request they hold) go early: held to the stream's end, they
    // made scavenges promote ~3.5 kB more per request (bench/HISTORY.md, session 17).
    this.#gate = undefined
    this.#ttfbMs = performance.now() - this.#startedAt
    this.#resumeUpstream = resume
    const headers = clientResponseHeaders(rawHeaders)
    this.#res.writeHead(statusCode, clientReasonPhrase(statusCode, statusText), headers)
    // Node sends a head only with the first body write. When the upstream's head came without
    // body bytes in the same read (a stream that pauses before its first event), send it now
    // instead of holding it back from the client until the upstream writes again.
    queueMicrotask(() => { if (this.#bytesOut === 0 && !this.#ended && !this.#res.destroyed) this.#res.flushHeaders() })
    this.#tap?.onResponseStart(statusCode, headers)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#handedOver) return false
    this.#bytesOut += chunk.length
    // false pauses the upstream socket until 'drain' calls resume: memory stays bounded.
    const more = this.#res.write(chunk)
    this.#tap?.onChunk(chunk) // after the write: observing never delays a byte
    return more
  }

  onComplete (): void {
    if (this.#handedOver) return
    // The upstream answered before the client's body was all sent; undici lets go of that
    // body, and its rest is read into nothing so the connection goes on (not left stalled).
    if (!this.#res.req.complete) discardUnreadBody(this.#res.req, this.#res.socket)
    this.#res.end()
    this.#tap?.onResponseEnd()
    this.#end(this.#res.statusCode, 'complete')
  }

  onError (err: Error): void {
    if (this.#handedOver) return // our own abort of a dropped attempt
    if (this.#clientGone || err instanceof ClientGoneError) {
      // Aborting from the 'close' listener lands here first: log the status the client did get.
      this.#end(this.#statusSent(), 'client')
      return
    }
    const res = this.#res
    if (err instanceof GatewayError) {
      // The gateway stopped the request itself: a streamed body over BODY_LIMIT, or one that
      // stalled past SERVER_REQUEST_TIMEOUT_MS.
      if (res.headersSent) res.destroy()
      else err.send(res)
      this.#end(res.headersSent ? res.statusCode : err.status, 'gateway', undefined, err.code)
      return
    }
    const failure = classifyUpstreamFailure(err)
    if (!res.headersSent && this.#gate?.onFailure(failure) === 'retry') {
      this.#handOver()
      return
    }
    if (!res.headersSent) {
      failure.error.send(res)
      this.#end(failure.error.status, 'upstream', { kind: failure.kind, code: failure.code })
      return
    }
    // Mid-body: destroying the socket drops the chunked terminator, so the client sees an error.
    this.#end(res.statusCode, 'upstream', { kind: failure.kind, code: failure.code })
    res.destroy()
  }

  /** Lets go of the client's response (the next attempt's relay takes it) and drops this attempt. */
  #handOver (): void {
    this.#handedOver = true
    this.#ended = true
    this.#res.off('close', this.#onClientClose)
    this.#res.off('drain', this.#onClientDrain)
    this.#queuedOn?.off('close', this.#onClientClose)
    this.#abortUpstream?.(new AttemptDroppedError())
  }

  /** The status the client got; 0 for none. A queued response (no socket yet) reached it with nothing it holds. */
  #statusSent (): number {
    return this.#res.headersSent && this.#res.socket !== null ? this.#res.statusCode : 0
  }

  #end (status: number, endedBy: EndedBy, failure?: RelayOutcome['failure'], stoppedWith?: string): void {
    if (this.#ended) return
    this.#ended = true
    this.#queuedOn?.off('close', this.#onClientClose)
    // Every field written, in one order, without a spread: on Node 20 (V8 11.3) `{ ...outcome, more }`
    // made an object with a map of its own each time, so every read of an outcome missed its
    // inline cache and went to the runtime (README, Performance).
    this.#onEnd({ status, endedBy, failure, stoppedWith, ttfbMs: this.#ttfbMs, bytesOut: this.#bytesOut })
  }
}

/** The reason handed to undici when the client leaves: it cancels the upstream request. */
export class ClientGoneError extends Error {
  override name = 'ClientGoneError'
  readonly code = 'CLIENT_GONE'
  constructor () {
    super('the client closed the connection')
  }
}

/** The reason handed to undici when an attempt's answer is dropped for another upstream's. */
export class AttemptDroppedError extends Error {
  override name = 'AttemptDroppedError'
  readonly code = 'ATTEMPT_DROPPED'
  constructor () {
    super('the answer was dropped: the request goes to another upstream')
  }
}
