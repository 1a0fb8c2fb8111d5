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
 * A transfer coding besides the final `chunked` (`gzip, chunked`), or undefined. Node's parser
 * decodes only the chunks and lets the rest through as if it were the body, and undici sends
 * that body upstream as plain chunks: the upstream would read compressed bytes as JSON. RFC
 * 9112 §6.1 answers such a request with a 501.
 */
export function unsupportedTransferCoding (req: IncomingMessage): string | undefined {
  const coding = req.headers['transfer-encoding']
  if (coding === undefined || coding === 'chunked') return undefined
  return coding.trim().toLowerCase() === 'chunked' ? undefined : coding
}
