/**
 * A seeded xorshift32 generator: the same seed gives the same sequence of unsigned 32-bit
 * numbers on every run, so a "random" test case can be replayed from its seed.
 */
export function xorshift32 (seed: number): () => number {
  let state = seed >>> 0 || 1 // 0 would stay 0 for ever
  return () => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state
  }
}
