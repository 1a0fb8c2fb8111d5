import type { IncomingMessage } from 'node:http'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import { lacksHost, transferCodingProblem } from '../http/request-framing.js'
import type { Transport } from '../observe/metrics.js'
import type { Session, SessionResolver } from '../session/resolve-session.js'
import type { Drain } from '../server/drain.js'
import { hasDotSegment, isAbsoluteForm, pathOf, upstreamPath, type UpstreamTarget } from '../upstream/upstream-path.js'
import { type ClientAuth, PresentedKey } from './client-auth.js'
import type { RateLimiter } from './rate-limit.js'

/** A request the gateway will send upstream. */
export interface Admitted {
  /** The upstream path and query. */
  upstreamPath: string
  /** The session the client named in its headers, if it did; the body may still decide otherwise. */
  sessionFromHeader: Session | undefined
}

export interface AdmissionDeps {
  config: GatewayConfig
  target: UpstreamTarget
  auth: ClientAuth
  sessions: SessionResolver
  drain: Drain
  /** Absent when no rate limit is set. */
  rateLimiter: RateLimiter | undefined
}

/**
 * The checks every request passes before anything goes upstream, HTTP and WebSocket alike,
 * in one order: framing (Host, transfer coding) → method → shutting down (WebSockets) → path →
 * WebSocket mode → client key (checked, then counted by the rate limit: its 429 comes first) →
 * body size → session header. The first that fails is the answer.
 */
export class Admission {
  readonly #deps: AdmissionDeps

  constructor (deps: AdmissionDeps) {
    this.#deps = deps
  }

  /** The admitted request, or the GatewayError to refuse it with. */
  admit (req: IncomingMessage, transport: Transport): Admitted | GatewayError {
    const { config, target, auth, sessions, drain, rateLimiter } = this.#deps
    if (lacksHost(req)) return errors.missingHost()
    const framing = transferCodingProblem(req)
    if (framing === 'not-chunked') return errors.malformedRequest()
    if (framing === 'unsupported') return errors.unsupportedTransferCoding(req.headers['transfer-encoding']!)
    // TRACE asks the upstream to echo the request back, managed key included.
    if (req.method === 'TRACE') return errors.methodNotAllowed('TRACE')
    // While draining, a request that reached an open connection is served (its connection then
    // closes); a WebSocket would outlive the drain, so it is sent elsewhere.
    if (transport === 'websocket' && !drain.accepting) return errors.shuttingDown()
    const url = req.url ?? '/'
    const path = upstreamPath(url, target)
    if (path === undefined) return unservedTarget(url)
    // 426 makes codex fall back to HTTP at once; anything else costs it seconds of retries.
    if (transport === 'websocket' && config.server.websocket === 'reject') return errors.webSocketsDisabled()
    if (auth.enabled || rateLimiter !== undefined) {
      const refused = refuseClient(req, auth, rateLimiter)
      if (refused !== undefined) return refused
    }
    if (Number(req.headers['content-length']) > config.server.bodyLimitBytes) return errors.bodyTooLarge(config.server.bodyLimitBytes)
    try {
      return { upstreamPath: path, sessionFromHeader: sessions.fromHeaders(req.headers) }
    } catch (err) {
      return err instanceof GatewayError ? err : errors.internal()
    }
  }
}

/** The 401 or 429 for a client that is not let in. */
function refuseClient (req: IncomingMessage, auth: ClientAuth, rateLimiter: RateLimiter | undefined): GatewayError | undefined {
  const presented = new PresentedKey(req.headers)
  const denied = auth.check(presented)
  if (rateLimiter !== undefined) {
    // Per client key (hashed, never logged), else per address. A key the gateway refused, or one
    // nothing checks (managed mode without gateway keys), counts against the address, so made-up
    // keys neither escape the limit nor guess keys unbounded; in pass-through mode the upstream
    // checks the key, and a made-up one only buys a 401.
    const address = req.socket.remoteAddress ?? ''
    const keyed = denied === undefined && auth.keysNameClients
    const limited = rateLimiter.take(keyed ? presented.id() ?? address : address)
    if (limited !== undefined) return limited
  }
  return denied
}

/**
 * Why a target is not forwarded. HTTP requests come here only for `/v1` targets, so only a dot
 * segment; a WebSocket upgrade comes for any target.
 */
function unservedTarget (target: string): GatewayError {
  if (hasDotSegment(target)) return errors.badPath()
  if (isAbsoluteForm(target)) return errors.absoluteFormTarget()
  return errors.webSocketNotFound(pathOf(target))
}
