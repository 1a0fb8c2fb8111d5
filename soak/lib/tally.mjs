/**
 * What the soak's clients saw: exchanges per kind and how they ended, bytes checked, bytes lost
 * or corrupted, and every unexpected outcome by kind with a few examples.
 */

const EXAMPLES_PER_ERROR = 3

export function createTally () {
  return {
    /** kind → { started, ok, failed } */
    kinds: {},
    /** Arrivals dropped because `--concurrency` exchanges were already in flight. */
    shed: 0,
    httpRequests: 0,
    webSockets: 0,
    bytesVerified: 0,
    lostBytes: 0,
    corruptedBytes: 0,
    /** error kind → { count, examples } */
    errors: {},
    /** Exchanges finished (ok or not) since the sampler last asked. */
    finishedSinceSample: 0,
    inFlight: 0,
    /** Spec id → monotonic µs when the client gave up on it (HTTP aborts, WebSocket terminations). */
    clientAborts: new Map(),
    /** Spec ids of streams the upstream stalled on purpose (the gateway must cancel them). */
    stalls: new Set(),
    /** Time from a stall's last byte to the client seeing the connection torn down, ms. */
    stallCutMs: [],
    /** Mid-stream failures (upstream destroyed or stalled): bytes sent before the cut vs bytes the client got. */
    cutStreams: { count: 0, bytesBeforeCut: 0, bytesReceived: 0 }
  }
}

export function errorCount (tally) {
  return Object.values(tally.errors).reduce((sum, e) => sum + e.count, 0)
}

/** One exchange's record: `fail` as often as needed; `finish` counts it once, ok or failed. */
export function startExchange (tally, kind) {
  const counts = tally.kinds[kind] ??= { started: 0, ok: 0, failed: 0 }
  counts.started++
  tally.inFlight++
  let failures = 0
  return {
    kind,
    tally,
    fail (errorKind, detail) {
      failures++
      const entry = tally.errors[errorKind] ??= { count: 0, examples: [] }
      entry.count++
      if (entry.examples.length < EXAMPLES_PER_ERROR) entry.examples.push(`${kind}: ${detail}`)
    },
    verified (bytes) { tally.bytesVerified += bytes },
    finish () {
      tally.inFlight--
      tally.finishedSinceSample++
      if (failures === 0) counts.ok++
      else counts.failed++
    }
  }
}
