import { checkpointsOf, InputHead, type InputHistory, type RecordedHistory } from '../../src/observe/input-history.js'

/** The history of an `input` written as `text` (in two parts, as chunks come), after `prefixBytes` of fingerprinted fields. */
export function historyOf (text: string, prefixBytes = 0): InputHistory {
  const head = new InputHead()
  const bytes = Buffer.from(text)
  head.update(bytes.subarray(0, bytes.length >> 1))
  head.update(bytes.subarray(bytes.length >> 1))
  head.end(0)
  return head.history(prefixBytes)!
}

/** What a call record keeps of `history`, cut at `limitBytes` (by default, as far as the head goes). */
export function recordOf (history: InputHistory, limitBytes = Infinity): RecordedHistory {
  return checkpointsOf(history, limitBytes) ?? {}
}
