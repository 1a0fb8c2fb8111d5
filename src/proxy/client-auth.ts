import { timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { errors, type GatewayError } from '../errors.js'
import { bearerToken, sha256 } from '../http/bearer.js'

/**
 * Managed-key mode: clients prove themselves with one of the gateway's own keys
 * (`Authorization: Bearer …`), and only the gateway's upstream key leaves the building.
 * Keys are compared as SHA-256 digests with `timingSafeEqual`, against every configured key,
 * so neither the length nor the first differing byte leaks through timing.
 */
export class ClientAuth {
  readonly #digests: Buffer[]
  readonly enabled: boolean
  /**
   * Whether a presented key names its client, for the rate limit: one the gateway checked, or in
   * pass-through mode one the upstream checks. Managed mode without gateway keys checks none.
   */
  readonly keysNameClients: boolean

  constructor (managed: boolean, gatewayKeys: readonly string[]) {
    this.enabled = managed && gatewayKeys.length > 0
    this.keysNameClients = this.enabled || !managed
    this.#digests = gatewayKeys.map(sha256)
  }

  /** The 401 to answer with, or undefined when the request may go on. */
  check (headers: IncomingHttpHeaders): GatewayError | undefined {
    if (!this.enabled) return undefined
    const presented = bearerToken(headers.authorization)
    if (presented === undefined) return errors.missingGatewayKey()
    const candidate = sha256(presented)
    let match = false
    for (const known of this.#digests) match = timingSafeEqual(candidate, known) || match
    return match ? undefined : errors.invalidGatewayKey()
  }

  /** A stable, non-reversible name for the client's key, for rate limiting. */
  static keyId (headers: IncomingHttpHeaders): string | undefined {
    const presented = bearerToken(headers.authorization)
    return presented === undefined ? undefined : sha256(presented).toString('base64url').slice(0, 16)
  }
}
