import type { ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../errors.js'
import { clientResponseHeaders } from './response-headers.js'
import { classifyUpstreamFailure, type FailureKind } from './upstream-failure.js'

/** Who ended the exchange: it ran to its end, the client left, or the upstream failed. */
export type EndedBy = 'complete' | 'client' | 'upstream' | 'gateway'

export interface RelayOutcome {
  /** Status the client got (the upstream's, or the gateway's own 502/504); 0 when it got none. */
  status: number
  endedBy: EndedBy
  failure?: { kind: FailureKind, code: string }
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
  #abortUpstream: ((err: Error) => void) | undefined
  #resumeUpstream: (() => void) | undefined
  #clientGone = false
  #ended = false
  #ttfbMs = -1
  #bytesOut = 0

  constructor (res: ServerResponse, startedAt: number, onEnd: (outcome: RelayOutcome) => void, tap?: ResponseTap) {
    this.#res = res
    this.#startedAt = startedAt
    this.#onEnd = onEnd
    this.#tap = tap
    res.on('close', () => {
      if (res.writableFinished) return
      this.#clientGone = true
      this.#abortUpstream?.(new ClientGoneError())
      // A client that leaves before undici reached onConnect is settled here; the request
      // is aborted as soon as undici hands it a socket.
      this.#end({ status: res.headersSent ? res.statusCode : 0, endedBy: 'client' })
    })
    res.on('drain', () => this.#resumeUpstream?.())
  }

  onConnect (abort: (err?: Error) => void): void {
    if (this.#clientGone) {
      abort(new ClientGoneError())
      return
    }
    this.#abortUpstream = abort
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true // 1xx interim responses are the upstream connection's business
    this.#ttfbMs = performance.now() - this.#startedAt
    this.#resumeUpstream = resume
    const headers = clientResponseHeaders(rawHeaders)
    this.#res.writeHead(statusCode, statusText, headers)
    // Node sends a head only with the first body write. When the upstream's head came without
    // body bytes in the same read (a stream that pauses before its first event), send it now
    // instead of holding it back from the client until the upstream writes again.
    queueMicrotask(() => { if (this.#bytesOut === 0 && !this.#ended && !this.#res.destroyed) this.#res.flushHeaders() })
    this.#tap?.onResponseStart(statusCode, headers)
    return true
  }

  onData (chunk: Buffer): boolean {
    this.#bytesOut += chunk.length
    // false pauses the upstream socket until 'drain' calls resume: memory stays bounded.
    const more = this.#res.write(chunk)
    this.#tap?.onChunk(chunk) // after the write: observing never delays a byte
    return more
  }

  onComplete (): void {
    this.#res.end()
    this.#tap?.onResponseEnd()
    this.#end({ status: this.#res.statusCode, endedBy: 'complete' })
  }

  onError (err: Error): void {
    if (this.#clientGone || err instanceof ClientGoneError) {
      // Aborting from the 'close' listener lands here first: log the status the client did get.
      this.#end({ status: this.#res.headersSent ? this.#res.statusCode : 0, endedBy: 'client' })
      return
    }
    const res = this.#res
    if (err instanceof GatewayError) {
      // The gateway stopped the request itself (e.g. a streamed body over BODY_LIMIT).
      if (res.headersSent) res.destroy()
      else err.send(res)
      this.#end({ status: res.headersSent ? res.statusCode : err.status, endedBy: 'gateway' })
      return
    }
    const failure = classifyUpstreamFailure(err)
    if (!res.headersSent) {
      failure.error.send(res)
      this.#end({ status: failure.error.status, endedBy: 'upstream', failure: { kind: failure.kind, code: failure.code } })
      return
    }
    // Mid-body: destroying the socket drops the chunked terminator, so the client sees an error.
    this.#end({ status: res.statusCode, endedBy: 'upstream', failure: { kind: failure.kind, code: failure.code } })
    res.destroy()
  }

  #end (outcome: Omit<RelayOutcome, 'ttfbMs' | 'bytesOut'>): void {
    if (this.#ended) return
    this.#ended = true
    this.#onEnd({ ...outcome, ttfbMs: this.#ttfbMs, bytesOut: this.#bytesOut })
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
