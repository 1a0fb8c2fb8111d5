import { checkpointsOf, InputItems, type InputHistory } from '../../src/observe/input-history.js'
import type { RecordedHistory } from '../../src/observe/input-history.js'

/** The history of items of these sizes, as the tap would count them, after `prefixBytes` of fingerprinted fields. */
export function historyOf (sizes: readonly number[], prefixBytes = 0): InputHistory {
  const items = new InputItems()
  let at = 0
  for (const size of sizes) {
    items.start(at)
    at += size
    items.end(at)
    at += 2 // a comma and a space: not part of any item
  }
  return items.history(prefixBytes)!
}

/** What a call record keeps of `history`, cut at `limitBytes` (by default, nowhere). */
export function recordOf (history: InputHistory, limitBytes = Infinity): RecordedHistory {
  const checkpoints = checkpointsOf(history, limitBytes)
  return { inputItems: checkpoints === undefined ? undefined : history.items, inputCheckpoints: checkpoints }
}
