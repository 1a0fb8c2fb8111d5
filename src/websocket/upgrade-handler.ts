/**
 * The undici handler of an upgrade request sent upstream. A 101 hands over the upstream
 * connection (`onUpgrade`); any other answer is a refusal, which reaches the client like any
 * HTTP response (status, headers, body, through the ResponseRelay), and so do the gateway's
 * own 502/504 when the upstream cannot be reached or does not answer in time.
 */
import type { Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import type { ResponseRelay } from '../relay/response-relay.js'

export type OnUpgraded = (rawHeaders: Buffer[], upstream: Socket) => void

export class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #refusal: ResponseRelay
  readonly #onUpgraded: OnUpgraded

  constructor (refusal: ResponseRelay, onUpgraded: OnUpgraded) {
    this.#refusal = refusal
    this.#onUpgraded = onUpgraded
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#refusal.onConnect(abort)
  }

  onUpgrade (_statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Socket): void {
    this.#onUpgraded((rawHeaders ?? []) as Buffer[], socket)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    return this.#refusal.onHeaders(statusCode, rawHeaders, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.#refusal.onData(chunk)
  }

  onComplete (): void {
    this.#refusal.onComplete()
  }

  onError (err: Error): void {
    this.#refusal.onError(err)
  }
}
