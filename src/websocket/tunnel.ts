/**
 * An established WebSocket, proxied as two TCP streams joined end to end: every byte the
 * client sends goes to the upstream and back, as is, in order, with backpressure both ways.
 * Frames, compression, pings and the closing handshake are the two ends' business; the
 * gateway only watches (FrameObserver) and speaks once, on shutdown, with a Close 1001 at
 * a frame boundary.
 */
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import type { RequestPrefix } from '../observe/prefix-fingerprint.js'
import type { TokenUsage } from '../session/session-usage.js'
import { closeFrame } from './frame-parser.js'
import { FrameObserver } from './frame-observer.js'
import { TERMINAL_EVENTS } from '../observe/responses-api.js'
import { ResponseEventReader } from './response-events.js'
import { ClientRequests } from './client-requests.js'
import type { DeflateParams } from './message-inflater.js'
import { TextMessages } from './text-messages.js'

/** Who ended it: the side that sent the first Close frame, or whose connection ended first; or the gateway's shutdown. */
export type TunnelEndedBy = 'client' | 'upstream' | 'shutdown'

export interface TunnelOutcome {
  endedBy: TunnelEndedBy
  /** Status code of the first Close frame (1005 when it had none); undefined when neither side sent one. */
  closeCode: number | undefined
  /** Bytes from the client to the upstream, frames as sent. */
  bytesIn: number
  /** Bytes from the upstream to the client. */
  bytesOut: number
}

export interface TunnelOptions {
  client: Socket
  /** The upstream connection undici upgraded (a net.Socket, or a tls.TLSSocket for wss). */
  upstream: Socket
  /** What the client sent after its handshake, before the tunnel existed. */
  clientHead: Buffer
  /** The compression the upstream's messages use. */
  deflate: DeflateParams | undefined
  /** The compression the client's messages use (they are read for their type, and prefix). */
  clientDeflate: DeflateParams | undefined
  /** Cache analysis wants each request's prefix (the default); false: only the client messages' types are read. */
  readsPrefixes?: boolean
  onResponseId: (id: string) => void
  /**
   * A response is over, with its usage or none (ResponseEventListener). `prefix` asks for the
   * prefix of the request it answers (cache analysis); it must be asked now, if at all: the
   * response's terminal event comes next.
   */
  onResponseDone: (usage: TokenUsage | undefined, prefix: () => Promise<RequestPrefix | undefined>) => void
  /** The client sent a request (`response.create`, `response.append`) whose first frame came at `startedAt`: a model call begins. Known once the message is read. */
  onRequest?: ((startedAt: number) => void) | undefined
  /** `response.model` of each response.created (read anyway, with its id). */
  onResponseModel?: ((model: string) => void) | undefined
  onEnd: (outcome: TunnelOutcome) => void
  /** Tracing's hook, absent when it is off: every upstream event; a terminal one once the request it answers is known. */
  onResponseEvent?: ((type: string | undefined) => void) | undefined
}

/**
 * TCP keepalive probes after this long without traffic: a peer that vanished (host gone, NAT
 * entry dropped) is noticed even though WebSocket pings are the ends' own and may never come.
 */
const KEEPALIVE_DELAY_MS = 60_000
const GOING_AWAY = 1001
const GOING_AWAY_REASON = 'gateway shutting down'
/**
 * After one side's FIN, or once both sides have sent their Close frame, how long the ends may
 * take to close their connections before both are dropped. A WebSocket has no use for a
 * half-open connection, nor for one whose closing handshake is done (RFC 6455 §7.1.1: the
 * server then closes TCP), so this only bounds a peer that never closes its side.
 */
const LINGER_MS = 5_000

export class WebSocketTunnel {
  readonly #client: Socket
  readonly #upstream: Socket
  readonly #options: TunnelOptions
  readonly #fromClient: FrameObserver
  readonly #fromUpstream: FrameObserver
  readonly #messages: TextMessages
  /** The client's messages: which are requests (`response.create`, `response.append`), and which are answered. */
  readonly #requests: ClientRequests
  #bytesIn = 0
  #bytesOut = 0
  #responding = false
  #endedBy: TunnelEndedBy | undefined
  #closeCode: number | undefined
  #closingWhenIdle = false
  #goneAway = false
  /** Inside a relay callback that is still reading its chunk: not a frame boundary yet. */
  #reading = false
  #clientClosed = false
  #upstreamClosed = false
  #ended = false
  #linger: NodeJS.Timeout | undefined

  constructor (options: TunnelOptions) {
    this.#options = options
    this.#client = options.client
    this.#upstream = options.upstream
    const requests = this.#requests = new ClientRequests(options.clientDeflate, {
      readsPrefixes: options.readsPrefixes,
      // Not after the end: a message inflated then starts nothing.
      onRequest: (startedAt) => { if (!this.#ended) options.onRequest?.(startedAt) },
      // A compressed message inflated later, outside any relay callback.
      onChange: () => { if (!this.#reading) this.#checkIdle() }
    })
    const prefix = async (): Promise<RequestPrefix | undefined> => await requests.ofCurrentResponse()
    const events = new ResponseEventReader({
      onEvent: (type) => this.#onUpstreamEvent(type),
      onResponseId: options.onResponseId,
      onResponseDone: (usage) => options.onResponseDone(usage, prefix),
      onResponseModel: options.onResponseModel
    })
    this.#messages = new TextMessages({
      deflate: options.deflate,
      // The requests an event may answer are read before it, so each is known when its response starts.
      onMessage: (text, complete, tail) => {
        requests.beforeEvent()
        events.read(text, complete, tail)
      },
      onLost: () => this.#checkIdle()
    })
    this.#fromClient = new FrameObserver({
      onClose: (code) => this.#sentClose('client', code),
      messages: requests.frames
    })
    this.#fromUpstream = new FrameObserver({
      messages: this.#messages,
      onClose: (code) => this.#sentClose('upstream', code)
    })
  }

  /** Joins the two sockets; the client must already have its 101. */
  start (): void {
    const client = this.#client
    const upstream = this.#upstream
    client.setTimeout(0)
    client.setNoDelay(true)
    client.setKeepAlive(true, KEEPALIVE_DELAY_MS)
    upstream.setKeepAlive(true, KEEPALIVE_DELAY_MS)

    client.on('data', (chunk: Buffer) => this.#relay(chunk, upstream, client, this.#fromClient, 'in'))
    upstream.on('data', (chunk: Buffer) => this.#relay(chunk, client, upstream, this.#fromUpstream, 'out'))
    client.on('drain', () => { if (!this.#goneAway) upstream.resume() })
    upstream.on('drain', () => { if (!this.#goneAway) client.resume() })
    // A FIN is passed on as a FIN: each side learns the other has finished, as it would directly.
    client.on('end', () => { this.#noteEnd('client'); upstream.end() })
    upstream.on('end', () => { this.#noteEnd('upstream'); client.end() })
    client.on('error', () => this.#noteEnd('client'))
    upstream.on('error', () => this.#noteEnd('upstream'))
    client.on('close', (hadError) => { this.#clientClosed = true; this.#afterClose(upstream, hadError) })
    upstream.on('close', (hadError: boolean) => { this.#upstreamClosed = true; this.#afterClose(client, hadError) })

    if (this.#options.clientHead.length > 0) this.#relay(this.#options.clientHead, upstream, client, this.#fromClient, 'in')
  }

  /**
   * Shutdown: closes the WebSocket with 1001 (going away) as soon as no response is under way
   * (now, if none is), so codex reconnects to another instance for its next turn and loses
   * nothing. A client message counts as owed until it is read and found not to be a request
   * (`response.create`, `response.append`), or the response to it is over. While either side's messages cannot be
   * read, that moment never comes and the grace period's `cut` ends it.
   */
  closeWhenIdle (): void {
    this.#closingWhenIdle = true
    this.#checkIdle()
  }

  /** Shutdown's grace period is over: both connections are dropped. */
  cut (): void {
    this.#endedBy ??= 'shutdown'
    this.#client.destroy()
    this.#upstream.destroy()
  }

  #relay (chunk: Buffer, to: Socket, from: Socket, observer: FrameObserver, direction: 'in' | 'out'): void {
    // After going away, and once the receiving side has finished (its FIN), bytes have nowhere to go.
    if (this.#goneAway || to.writableEnded || to.destroyed) return
    if (direction === 'in') this.#bytesIn += chunk.length
    else this.#bytesOut += chunk.length
    // Written first: watching never delays a byte.
    if (!to.write(chunk)) from.pause()
    this.#reading = true
    try {
      observer.push(chunk)
    } finally {
      this.#reading = false
    }
    this.#checkIdle()
  }

  #onUpstreamEvent (type: string | undefined): void {
    const onResponseEvent = this.#options.onResponseEvent
    if (type === 'response.created') this.#responding = true
    if (type !== undefined && TERMINAL_EVENTS.has(type)) {
      this.#responding = false
      // Tracing hears of the end once the request it answers is read (a compressed one may still be inflating).
      this.#requests.answered(onResponseEvent === undefined ? undefined : () => onResponseEvent(type))
    } else {
      onResponseEvent?.(type)
    }
    // Events of inflated messages come later, outside any relay callback.
    if (!this.#reading) this.#checkIdle()
  }

  #checkIdle (): void {
    if (!this.#closingWhenIdle || this.#goneAway || this.#reading || this.#ended) return
    // Unread client messages count as owed: only a request is, but its type is known only once read.
    const idle = !this.#responding && !this.#messages.lost && this.#messages.settled && this.#fromUpstream.atBoundary && this.#requests.idle
    if (idle) this.#goAway()
  }

  /**
   * Ends both sides with a Close 1001 at a frame boundary: to the client as the server it
   * talks to, and to the upstream as the client it talks to (masked), or, when the client was
   * mid-frame, by dropping the upstream connection. Unless a closing handshake is under way.
   */
  #goAway (): void {
    if (this.#fromClient.closeCode !== undefined || this.#fromUpstream.closeCode !== undefined) {
      // The ends are closing already: a Close of the gateway's own would be a second one to
      // whichever end sent one. Their handshake finishes by itself, within the linger.
      this.#lingerThenDrop()
      return
    }
    this.#goneAway = true
    this.#endedBy ??= 'shutdown'
    this.#closeCode ??= GOING_AWAY
    const client = this.#client
    const upstream = this.#upstream
    // The client's reply (its Close, then its FIN) is read and dropped; nothing more goes upstream.
    client.resume()
    upstream.resume()
    client.end(closeFrame(GOING_AWAY, GOING_AWAY_REASON))
    if (this.#fromClient.atBoundary) upstream.end(closeFrame(GOING_AWAY, GOING_AWAY_REASON, randomBytes(4)))
    else upstream.destroy()
    this.#lingerThenDrop()
  }

  /** A side's first Close frame (its observer holds its code from now on). */
  #sentClose (side: 'client' | 'upstream', code: number): void {
    // Nothing may follow both Close frames: ends that keep their connections open are dropped.
    if (this.#fromClient.closeCode !== undefined && this.#fromUpstream.closeCode !== undefined) this.#lingerThenDrop()
    if (this.#closeCode !== undefined) return
    this.#closeCode = code
    this.#endedBy ??= side
  }

  #noteEnd (side: 'client' | 'upstream'): void {
    this.#endedBy ??= side
    this.#lingerThenDrop()
  }

  #lingerThenDrop (): void {
    this.#linger ??= setTimeout(() => {
      this.#client.destroy()
      this.#upstream.destroy()
    }, LINGER_MS).unref()
  }

  /**
   * One side's connection is closed. After a clean end the other finishes writing what it
   * holds and closes; after a failure (reset, error) it is dropped at once: the peer vanished.
   */
  #afterClose (other: Socket, hadError: boolean): void {
    if (hadError) other.destroy()
    else if (!other.destroyed) other.destroySoon()
    if (this.#clientClosed && this.#upstreamClosed) this.#finish()
  }

  #finish (): void {
    if (this.#ended) return
    // A request no event has asked about yet is known before the end (tracing ends its span as cut short).
    this.#requests.finish()
    this.#ended = true
    clearTimeout(this.#linger)
    this.#messages.finish()
    this.#options.onEnd({
      endedBy: this.#endedBy ?? 'client',
      closeCode: this.#closeCode,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut
    })
  }
}
