import type { IncomingMessage, ServerResponse } from 'node:http'
import { errors, GatewayError, JSON_CONTENT_TYPE } from '../errors.js'
import { lacksHost } from '../http/request-framing.js'
import type { Logger } from '../observe/logger.js'
import { isAbsoluteForm, pathOf } from '../upstream/upstream-path.js'

/** A request to one of the gateway's own routes, with its parsed URL and path parameters. */
export interface SideRequest {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** The values of the pattern's `:name` segments, decoded, in order. */
  params: string[]
}

export type SideHandler = (request: SideRequest) => void | Promise<void>
/** Runs before the routes under a prefix: the error to refuse with, or undefined to go on. */
export type SideGuard = (request: SideRequest) => GatewayError | undefined

interface Route {
  segments: string[]
  handler: SideHandler
}

/**
 * The gateway's own few routes (health, metrics, admin): GET and HEAD (answered like GET, less
 * the body), exact segments or `:name` ones; another method on a route is a 405. Proxied
 * traffic never comes here; a framework's router, hooks and reply objects would cost more
 * memory and start-up time than these routes are worth.
 */
export class SideRoutes {
  readonly #routes: Route[] = []
  readonly #guards: Array<{ prefix: string, guard: SideGuard }> = []
  readonly #logger: Logger
  readonly #served: string

  /** `served`: what the listener serves, said in its 404s (`mainRoutes`, `METRICS_ROUTES`). */
  constructor (logger: Logger, served: string) {
    this.#logger = logger
    this.#served = served
  }

  /** `pattern` like `/gateway/sessions/:id`. */
  get (pattern: string, handler: SideHandler): void {
    this.#routes.push({ segments: pattern.split('/'), handler })
  }

  guard (prefix: string, guard: SideGuard): void {
    this.#guards.push({ prefix, guard })
  }

  /**
   * Answers a request for a route, or with an OpenAI-style 404 (405 for another method than
   * GET or HEAD, 400 for a broken URL, a full URL as the target or an HTTP/1.1 request without Host).
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const found = this.#find(req)
    if (found instanceof GatewayError) {
      found.send(res)
      return
    }
    const { url, match } = found
    const request = { req, res, url, params: match.params }
    const refused = this.#guards.find(({ prefix }) => url.pathname.startsWith(prefix))?.guard(request)
    if (refused !== undefined) {
      refused.send(res)
      return
    }
    Promise.resolve(match.route.handler(request)).catch((err: unknown) => {
      if (!(err instanceof GatewayError)) this.#logger.error({ err }, 'unhandled error')
      if (!res.headersSent) (err instanceof GatewayError ? err : errors.internal()).send(res)
      else res.destroy()
    })
  }

  /** The route a request is for, or the error that says why there is none. */
  #find (req: IncomingMessage): { url: URL, match: { route: Route, params: string[] } } | GatewayError {
    if (lacksHost(req)) return errors.missingHost()
    const method = req.method ?? 'GET'
    const target = req.url ?? '/'
    // Absolute-form (`GET http://host/…`) is what a client sends a forward proxy.
    if (!target.startsWith('/')) return isAbsoluteForm(target) ? errors.absoluteFormTarget() : errors.notFound(method, target, this.#served)
    let url: URL
    let match: { route: Route, params: string[] } | undefined
    try {
      // Not resolved against a base: `//v1/models` would lose `v1` as its host.
      url = new URL(`http://gateway${target}`)
      match = this.#match(url.pathname)
    } catch {
      return errors.badUrl()
    }
    // Named as sent, not as the URL parser normalised it.
    if (match === undefined) return errors.notFound(method, pathOf(target), this.#served)
    if (method !== 'GET' && method !== 'HEAD') return errors.routeMethodNotAllowed(method, pathOf(target))
    return { url, match }
  }

  /** Throws URIError for a broken percent-escape in a parameter. */
  #match (pathname: string): { route: Route, params: string[] } | undefined {
    const segments = pathname.split('/')
    for (const route of this.#routes) {
      if (route.segments.length !== segments.length) continue
      const params: string[] = []
      let matched = true
      for (let i = 0; i < segments.length && matched; i++) {
        const want = route.segments[i]!
        if (want.startsWith(':') && segments[i] !== '') params.push(decodeURIComponent(segments[i]!))
        else matched = want === segments[i]
      }
      if (matched) return { route, params }
    }
    return undefined
  }
}

/** A JSON answer that no cache keeps. */
export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}
