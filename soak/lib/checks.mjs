/**
 * What an exchange must have delivered: the status, the upstream's headers with one session
 * under both spellings, and the body, whole or as an exact prefix; lost and corrupted bytes
 * are counted into the tally, every failure recorded on the exchange by kind.
 */
import { sha256, sseEvents } from './payloads.mjs'
import { EXCHANGE_TIMEOUT_MS } from './http-exchange.mjs'

export function errorName (err) {
  const code = err.code ?? err.cause?.code ?? err.name ?? 'Error'
  return `client-error:${code}`
}

export function checkStatus (x, spec, result, status) {
  if (result.status === status) return true
  x.fail(`status-${result.status}`, `${spec.id}: expected ${status}, got ${result.status} ${result.received.subarray(0, 200).toString('utf8')}`)
  return false
}

/** Checks the upstream's headers came back, with one session under both spellings. */
function checkHeaders (x, spec, result, expected, session) {
  const h = result.headers
  if (h['x-soak-sha256'] !== sha256(expected)) x.fail('upstream-hash-header', `${spec.id}: x-soak-sha256 ${h['x-soak-sha256']} is not the expected body's hash (soak bug, or headers changed)`)
  const seen = h['x-soak-session']
  if (typeof seen !== 'string' || seen === '' || seen !== h['x-soak-session-underscore']) {
    x.fail('session-headers', `${spec.id}: upstream got session-id ${JSON.stringify(seen)} and session_id ${JSON.stringify(h['x-soak-session-underscore'])}`)
  } else if (session !== undefined && seen !== session) {
    x.fail('session-regenerated', `${spec.id}: client sent session-id ${session}, upstream got ${seen}`)
  }
}

/** The whole body, exactly. Returns true when the exchange is sound. */
export function checkComplete (x, spec, result, expected, { status = 200, session } = {}) {
  if (result.timedOut) {
    x.fail('timeout', `${spec.id} after ${EXCHANGE_TIMEOUT_MS} ms (${result.received.length} bytes in)`)
    return false
  }
  if (result.error !== undefined) {
    x.fail(errorName(result.error), `${spec.id}: ${result.error.message} after ${result.received.length} of ${expected.length} bytes`)
    countDamage(x, spec, result.received, expected, true)
    return false
  }
  if (!checkStatus(x, spec, result, status)) return false
  checkHeaders(x, spec, result, expected, session)
  return countDamage(x, spec, result.received, expected, true)
}

/** What arrived before the client left (or the stream was cut) must be the start of the body. */
export function checkPrefix (x, spec, received, expected) {
  return countDamage(x, spec, received, expected, false)
}

/**
 * Compares received bytes with expected ones (all of them, or a prefix), counting lost and
 * corrupted bytes into the tally. Returns true when they match.
 */
function countDamage (x, spec, received, expected, whole) {
  const overlap = Math.min(received.length, expected.length)
  const same = whole ? received.equals(expected) : received.length <= expected.length && received.equals(expected.subarray(0, received.length))
  if (same) {
    x.verified(received.length)
    return true
  }
  let differing = 0
  let first = -1
  for (let i = 0; i < overlap; i++) {
    if (received[i] !== expected[i]) {
      differing++
      if (first === -1) first = i
    }
  }
  const extra = Math.max(0, received.length - expected.length)
  const lost = whole ? Math.max(0, expected.length - received.length) : 0
  x.tally.corruptedBytes += differing + extra
  x.tally.lostBytes += lost
  x.verified(overlap - differing)
  if (differing + extra > 0) x.fail('corrupted-bytes', `${spec.id}: ${differing} bytes differ (first at ${first}), ${extra} extra, in ${received.length} received, ${expected.length} expected`)
  if (lost > 0) x.fail('lost-bytes', `${spec.id}: ${lost} of ${expected.length} bytes missing`)
  return false
}

/**
 * A stream the upstream broke (destroyed or stalled) after `cutAfter` events: the client must
 * see an error, never a clean end, and what it got must be the start of what was sent.
 */
export function checkCut (ctx, x, spec, result) {
  const expected = Buffer.concat(sseEvents(spec))
  const sent = Buffer.concat(sseEvents(spec).slice(0, spec.cutAfter))
  if (result.timedOut) {
    x.fail('timeout', `${spec.id}: the cut stream was still open after ${EXCHANGE_TIMEOUT_MS} ms (${result.received.length} bytes in)`)
    return false
  }
  if (result.status !== 200) return checkStatus(x, spec, result, 200)
  if (result.error === undefined) {
    x.fail('truncation-hidden', `${spec.id}: the upstream ${spec.cut === 'destroy' ? 'broke' : 'stalled'} after ${sent.length} bytes and the client saw a clean end after ${result.received.length}`)
    return false
  }
  ctx.tally.cutStreams.count++
  ctx.tally.cutStreams.bytesBeforeCut += sent.length
  ctx.tally.cutStreams.bytesReceived += result.received.length
  if (result.received.length > sent.length) {
    x.fail('corrupted-bytes', `${spec.id}: ${result.received.length} bytes received but the upstream sent only ${sent.length} before the cut`)
    return false
  }
  return checkPrefix(x, spec, result.received, expected)
}

