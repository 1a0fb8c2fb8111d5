/**
 * Every error the gateway answers with itself, declared once with its HTTP status and
 * an OpenAI-style body, so clients that parse `{"error":{…}}` show a useful message.
 */

import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { lingerAfterAnswer } from './http/lingering-close.js'
import { hasBody } from './http/request-framing.js'

/** The content type of every JSON body the gateway writes itself (errors, admin and health routes). */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

export type OpenAIErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error' | 'upstream_error'

export class GatewayError extends Error {
  override name = 'GatewayError'
  constructor (
    readonly status: number,
    readonly type: OpenAIErrorType,
    readonly code: string,
    message: string,
    /** Response headers the error needs besides its body's (`retry-after`, `allow`). */
    readonly headers: Readonly<Record<string, string>> = {},
    /** The request parameter at fault, as OpenAI names it in `param`. */
    readonly param: string | null = null
  ) {
    super(message)
  }

  /** The response body: `{"error":{"message","type","code","param"}}`. */
  body (): string {
    return JSON.stringify({ error: { message: this.message, type: this.type, code: this.code, param: this.param } })
  }

  /** Answers on a ServerResponse (a proxied request, the gateway's own routes, an upgrade's socket) and ends it. */
  send (res: ServerResponse): void {
    const body = this.body()
    closeIfBodyUnread(res)
    // Its own reason phrase, never one a failed relay left behind on the response.
    // The spread last: on Node 20 one first, then more keys, gave each object a map of its own.
    res.writeHead(this.status, STATUS_CODES[this.status] ?? 'Error', { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), ...this.headers })
    res.end(body)
  }

  /**
   * Writes a whole HTTP/1.1 response straight onto a socket that has no ServerResponse
   * (parser errors, CONNECT) and closes it.
   */
  endSocket (socket: Duplex): void {
    const body = this.body()
    let head = `HTTP/1.1 ${this.status} ${STATUS_CODES[this.status] ?? 'Error'}\r\n`
    for (const [name, value] of Object.entries(this.headers)) head += `${name}: ${value}\r\n`
    socket.end(`${head}content-type: ${JSON_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  }
}

/**
 * A gateway error that goes out before its request's body has all arrived closes the
 * connection (`Connection: close`, as nginx does): a client may stop sending once it has the
 * answer, and whatever was reading the body has let go of it, so a kept-alive connection could
 * take the client's next request for the rest of the body, or wait for a rest that never comes.
 * An upstream's own early answer is relayed as it came, and the rest of the body drained
 * (http/unread-body.ts): a body that stalls instead meets SERVER_REQUEST_TIMEOUT_MS, which
 * closes the connection after that answer (client-errors.ts).
 */
export function closeIfBodyUnread (res: ServerResponse): void {
  // Node marks a request complete only after its handler returns, bodiless ones too: those keep the connection.
  const req = res.req as ServerResponse['req'] | undefined
  if (req === undefined || req.complete || !hasBody(req)) return
  res.shouldKeepAlive = false
  // Closed only once the body's rest has arrived (30 s at most), so a client still sending reads the answer.
  lingerAfterAnswer(req, res)
}

/** What the main listener serves, for its 404s: /metrics and /gateway/ only where they are served. */
export function mainRoutes ({ metrics, admin }: { metrics: boolean, admin: boolean }): string {
  const own = ['/healthz', '/readyz', ...(metrics ? ['/metrics'] : []), ...(admin ? ['/gateway/'] : [])]
  return `The gateway serves /v1/* (forwarded upstream), ${own.slice(0, -1).join(', ')} and ${own.at(-1)!}.`
}
/** What the separate metrics listener (`METRICS_PORT`) serves, for its 404s. */
export const METRICS_ROUTES = 'This listener (METRICS_PORT) serves /metrics only; the gateway\'s other routes are on its main port.'

export const errors = {
  invalidSessionId: (header: string) => new GatewayError(400, 'invalid_request_error', 'invalid_session_id',
    `The ${header} header must be 1 to 256 printable ASCII characters without spaces.`),
  badPath: () => new GatewayError(400, 'invalid_request_error', 'invalid_path',
    'The request path must not contain dot segments (. or ..), encoded slashes or backslashes.'),
  badUrl: () => new GatewayError(400, 'invalid_request_error', 'invalid_path',
    'The request path is not a valid URL path (a broken percent-escape?).'),
  absoluteFormTarget: () => new GatewayError(400, 'invalid_request_error', 'absolute_form_target',
    'The gateway is a reverse proxy, not a forward proxy: send requests to its own address with a path (/v1/...), ' +
    'not a full URL (is it set as the client\'s HTTP proxy?).'),
  methodNotAllowed: (method: string) => new GatewayError(405, 'invalid_request_error', 'method_not_allowed',
    `The gateway does not serve ${method} requests.`, { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' }),
  /** A method other than GET or HEAD on one of the gateway's own routes (health, metrics, admin). */
  routeMethodNotAllowed: (method: string, path: string) => new GatewayError(405, 'invalid_request_error', 'method_not_allowed',
    `${path} answers GET and HEAD only, not ${method}.`, { allow: 'GET, HEAD' }),
  /** `served`: what the listener serves instead. */
  notFound: (method: string, path: string, served: string) => new GatewayError(404, 'invalid_request_error', 'not_found',
    `No route for ${method} ${path}. ${served}`),
  webSocketNotFound: (path: string) => new GatewayError(404, 'invalid_request_error', 'not_found',
    `No WebSocket route for ${path}. WebSockets are served under /v1/ only (codex opens /v1/responses).`),
  invalidParameter: (name: string, expected: string) => new GatewayError(400, 'invalid_request_error', 'invalid_parameter',
    `The query parameter ${name} must be ${expected}.`, {}, name),
  upstreamUnreachable: (detail: string) => new GatewayError(502, 'upstream_error', 'upstream_unreachable',
    `The gateway could not reach the upstream API (${detail}).`),
  upstreamFailed: (detail: string) => new GatewayError(502, 'upstream_error', 'upstream_failed',
    `The upstream API failed before answering (${detail}).`),
  upstreamConnectTimeout: () => new GatewayError(504, 'upstream_error', 'upstream_connect_timeout',
    'The gateway timed out connecting to the upstream API.'),
  upstreamHeadersTimeout: () => new GatewayError(504, 'upstream_error', 'upstream_timeout',
    'The upstream API did not start its response in time.'),
  malformedRequest: () => new GatewayError(400, 'invalid_request_error', 'malformed_request',
    'The request is not valid HTTP/1.1.'),
  missingHost: () => new GatewayError(400, 'invalid_request_error', 'missing_host',
    'An HTTP/1.1 request must carry a Host header.'),
  unsupportedTransferCoding: (coding: string) => new GatewayError(501, 'invalid_request_error', 'unsupported_transfer_coding',
    `The gateway decodes only the chunked transfer coding; the request's body is sent with "Transfer-Encoding: ${coding}". Compressed bodies go with Content-Encoding instead.`),
  requestTimeout: () => new GatewayError(408, 'invalid_request_error', 'request_timeout',
    'The request was not received in time.'),
  expectationFailed: () => new GatewayError(417, 'invalid_request_error', 'expectation_failed',
    'The only Expect header the gateway supports is "Expect: 100-continue".'),
  headersTooLarge: () => new GatewayError(431, 'invalid_request_error', 'headers_too_large',
    'The request headers are too large.'),
  bodyTooLarge: (limitBytes: number) => new GatewayError(413, 'invalid_request_error', 'body_too_large',
    `The request body is larger than the gateway's limit of ${limitBytes} bytes.`),
  missingGatewayKey: () => new GatewayError(401, 'authentication_error', 'missing_api_key',
    'This gateway needs a gateway API key: send it as "Authorization: Bearer <key>".'),
  invalidGatewayKey: () => new GatewayError(401, 'authentication_error', 'invalid_api_key',
    'The API key sent is not one of this gateway\'s keys.'),
  rateLimited: (retryAfterSeconds: number) => new GatewayError(429, 'rate_limit_error', 'rate_limit_exceeded',
    `Too many requests for this key; retry after ${retryAfterSeconds} s.`, { 'retry-after': String(retryAfterSeconds) }),
  adminUnauthorized: () => new GatewayError(401, 'authentication_error', 'invalid_admin_token',
    'The admin routes need "Authorization: Bearer <ADMIN_TOKEN>".'),
  sessionNotFound: (id: string) => new GatewayError(404, 'invalid_request_error', 'session_not_found',
    `No session ${JSON.stringify(id)} is known to this gateway.`),
  webSocketsDisabled: () => new GatewayError(426, 'invalid_request_error', 'websockets_disabled',
    'This gateway does not proxy WebSockets (WEBSOCKET=reject); send the request over HTTP instead.'),
  upstreamUnavailable: (group: string) => new GatewayError(503, 'upstream_error', 'upstream_unavailable',
    `No upstream of group "${group}" is healthy, and this request continues a response or conversation stored there: ` +
    'it is not sent to another group, where that id does not exist. Retry when the group recovers.', { 'retry-after': '5' }),
  shuttingDown: () => new GatewayError(503, 'server_error', 'shutting_down',
    'The gateway is shutting down; retry on another instance.'),
  internal: () => new GatewayError(500, 'server_error', 'internal_error',
    'The gateway failed to handle the request.')
}
