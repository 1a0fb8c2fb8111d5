/**
 * Weighted rendezvous (highest-random-weight) hashing: every upstream gets a score from a hash
 * of (session id, upstream name) scaled by its weight, and the highest wins. Every replica
 * computes the same order without talking to the others, and removing an upstream moves only
 * the sessions it held (their next choice was already second in line).
 */

/** The shape rendezvous needs of an upstream. */
export interface Weighted {
  readonly name: string
  readonly weight: number
}

const TWO_POW_53 = 2 ** 53

/**
 * `-weight / ln(u)` with `u` in (0, 1) from a 53-bit hash: a sample whose chance of being the
 * largest is proportional to `weight` (the exponential-race form of weighted rendezvous).
 */
export function rendezvousScore (sessionId: string, upstream: Weighted): number {
  const u = (hashPair(sessionId, upstream.name) + 0.5) / TWO_POW_53
  return -upstream.weight / Math.log(u)
}

/** `upstreams` ordered by their score for `sessionId`, best first; a new array. */
export function rendezvousOrder<T extends Weighted> (sessionId: string, upstreams: readonly T[]): T[] {
  const scored = upstreams.map((upstream) => ({ upstream, score: rendezvousScore(sessionId, upstream) }))
  scored.sort((a, b) => b.score - a.score)
  return scored.map((entry) => entry.upstream)
}

/**
 * cyrb53 over `a`, a separator, then `b`, without building the joined string: a fast,
 * well-mixed 53-bit non-cryptographic hash (session ids come from clients, but a client that
 * steers its own session's upstream gains nothing it could not get by picking another id).
 */
export function hashPair (a: string, b: string): number {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  const mix = (code: number): void => {
    h1 = Math.imul(h1 ^ code, 2654435761)
    h2 = Math.imul(h2 ^ code, 1597334677)
  }
  for (let i = 0; i < a.length; i++) mix(a.charCodeAt(i))
  mix(0)
  for (let i = 0; i < b.length; i++) mix(b.charCodeAt(i))
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 2097152 * (h2 >>> 0) + (h1 >>> 0) // 21 bits of h2, 32 of h1: below 2^53
}
