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
  check (presented: PresentedKey): GatewayError | undefined {
    if (!this.enabled) return undefined
    const candidate = presented.digest()
    if (candidate === undefined) return errors.missingGatewayKey()
    let match = false
    for (const known of this.#digests) match = timingSafeEqual(candidate, known) || match
    return match ? undefined : errors.invalidGatewayKey()
  }
}

/**
 * The bearer key a request presents, hashed at most once however many checks ask for it (the key
 * check and the rate limit's client name both want the digest).
 */
export class PresentedKey {
  readonly #headers: IncomingHttpHeaders
  #digest: Buffer | undefined | null = null

  constructor (headers: IncomingHttpHeaders) {
    this.#headers = headers
  }

  /** SHA-256 of the key; undefined when the request presents none. */
  digest (): Buffer | undefined {
    if (this.#digest === null) {
      const token = bearerToken(this.#headers.authorization)
      this.#digest = token === undefined ? undefined : sha256(token)
    }
    return this.#digest
  }

  /** A stable, non-reversible name for the key (the digest's first 12 bytes), for rate limiting. */
  id (): string | undefined {
    return this.digest()?.toString('base64url', 0, 12)
  }
}
