import type { IncomingMessage } from 'node:http'

/** A request has a body when it says so in its framing headers (RFC 9112 §6.3). */
export function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}
