import type { AttemptSpan } from '../observe/tracing.js'
import type { AttemptGate } from './attempts.js'

/**
 * An attempt's gate that also ends the attempt's client span when the attempt is dropped to be
 * retried elsewhere: the span then carries the status or the failure that dropped it, and a
 * failover shows in the trace as one span per upstream tried.
 */
export function spannedGate (gate: AttemptGate, attempt: AttemptSpan, startedAt: number): AttemptGate {
  const spanned = Object.create(gate) as AttemptGate
  spanned.onStatus = (statusCode, rawHeaders) => {
    const decision = gate.onStatus(statusCode, rawHeaders)
    if (decision === 'retry') attempt.end({ status: statusCode, endedBy: 'upstream', ttfbMs: performance.now() - startedAt })
    return decision
  }
  spanned.onFailure = (failure) => {
    const decision = gate.onFailure(failure)
    if (decision === 'retry') attempt.end({ status: 0, endedBy: 'upstream', ttfbMs: -1, failure: { kind: failure.kind, code: failure.code } })
    return decision
  }
  spanned.served = () => { gate.served() }
  return spanned
}
