import type { IncomingMessage } from 'node:http'

/** A request has a body when it says so in its framing headers (RFC 9112 §6.3). */
export function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * An HTTP/1.1 request without Host (RFC 9112 §3.2: answered with a 400). Node's own check
 * answers with an empty 400, so the listeners turn it off and ask this instead.
 */
export function lacksHost (req: IncomingMessage): boolean {
  return req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1
}

/**
 * What is wrong with a request's Transfer-Encoding, if anything. `not-chunked`: `chunked` is not
 * its last coding, so the body's length cannot be known (RFC 9112 §6.3: a 400, and the
 * connection closes). `unsupported`: a coding before the final `chunked` (`gzip, chunked`): Node's
 * parser decodes only the chunks and would hand the rest on as if it were the body, and undici
 * would send that upstream as plain chunks, compressed bytes read as JSON (§6.1: a 501). Node
 * refuses some of these itself, and which ones depends on its version.
 */
export function transferCodingProblem (req: IncomingMessage): 'not-chunked' | 'unsupported' | undefined {
  const header = req.headers['transfer-encoding']
  if (header === undefined || header === 'chunked') return undefined
  const codings = header.split(',').map((coding) => coding.trim().toLowerCase())
  if (codings.at(-1) !== 'chunked') return 'not-chunked'
  return codings.length > 1 ? 'unsupported' : undefined
}
