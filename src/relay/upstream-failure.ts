import { errors, type GatewayError } from '../errors.js'

/** How an upstream exchange failed, as the log and metrics name it. */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'protocol'

export interface UpstreamFailure {
  kind: FailureKind
  /** undici's or the OS's error code, e.g. `ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`. */
  code: string
  /** What the client is told when nothing of the response has been sent yet. */
  error: GatewayError
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EADDRNOTAVAIL'])

/** Names an undici error and picks the 502/504 the client gets for it. */
export function classifyUpstreamFailure (err: Error & { code?: string }): UpstreamFailure {
  const code = err.code ?? err.name
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { kind: 'timeout', code, error: errors.upstreamConnectTimeout() }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', code, error: errors.upstreamHeadersTimeout() }
  if (CONNECT_CODES.has(code) || isTlsFailure(code)) {
    return { kind: 'connect', code, error: errors.upstreamUnreachable(code) }
  }
  // undici's HTTPParserError comes without its HPE_ code (undici 7 looks the code up by number
  // in a table keyed by name), so it is known by its name: otherwise it passed for a reset.
  if (code.startsWith('HPE_') || code === 'HTTPParserError' || code === 'UND_ERR_INFO') return { kind: 'protocol', code, error: errors.upstreamFailed('malformed response') }
  return { kind: 'reset', code, error: errors.upstreamFailed(code) }
}

/** OpenSSL's verification codes (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `CERT_HAS_EXPIRED`, …) and Node's TLS ones. */
function isTlsFailure (code: string): boolean {
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.startsWith('UNABLE_TO_') || code.includes('CERT')
}
