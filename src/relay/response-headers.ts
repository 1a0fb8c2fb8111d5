import { STATUS_CODES } from 'node:http'
import { connectionTokens, isHopByHop } from '../http/hop-by-hop.js'

/** What Node refuses in a reason phrase (its `checkInvalidHeaderChar`): it would throw in `writeHead`. */
const INVALID_REASON = /[^\t\x20-\x7e\x80-\xff]/

/**
 * The upstream's reason phrase when Node can write it, else Node's own for the status (undici
 * decodes the phrase as UTF-8, so a byte that is no character there arrives as U+FFFD). The
 * phrase means nothing to clients (RFC 9112 §4): replacing it never changes an answer.
 */
export function clientReasonPhrase (statusCode: number, statusText: string): string {
  return INVALID_REASON.test(statusText) ? STATUS_CODES[statusCode] ?? 'unknown' : statusText
}

/**
 * The upstream's response headers as a flat `[name, value, …]` list for `writeHead`, in
 * order and spelling, less hop-by-hop ones. `content-length` and `content-encoding` stay:
 * the body is relayed as the very bytes they describe.
 */
export function clientResponseHeaders (rawHeaders: Buffer[] | string[]): string[] {
  const out: string[] = []
  let dropAlso: Set<string> | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    // latin1 maps bytes to code units one to one, and Node writes header strings back the same way.
    const name = rawHeaders[i]!.toString('latin1')
    const value = rawHeaders[i + 1]!.toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'connection') {
      dropAlso = connectionTokens(value, dropAlso)
      continue
    }
    if (isHopByHop(lower)) continue
    out.push(name, value)
  }
  if (dropAlso === undefined) return out
  return out.filter((_, i) => i % 2 === 0 ? !dropAlso.has(out[i]!.toLowerCase()) : !dropAlso.has(out[i - 1]!.toLowerCase()))
}
