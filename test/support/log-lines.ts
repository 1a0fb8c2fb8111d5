/**
 * Parsed JSON log lines as they are written, and promises for lines yet to come: what a test
 * waits on, whether the gateway runs in-process or as its own process.
 */
export type LogLine = Record<string, unknown>

/** Long enough for a gateway process to start on a loaded CI machine; short of tap's 240 s per file. */
const WAIT_MS = 30_000

export interface LogLines {
  /** Every line added so far, in order. */
  readonly lines: LogLine[]
  /** Adds a line, settling whoever waits for one like it. */
  add: (line: LogLine) => void
  /**
   * Resolves with the first line, already added or still to come, matching `predicate`. Rejects
   * after 30 s naming `what` never came and the last lines that did: a missing line fails its
   * test instead of hanging the file until tap's timeout, which says nothing of where.
   */
  waitFor: (predicate: (line: LogLine) => boolean, what?: string) => Promise<LogLine>
}

export function logLines (): LogLines {
  const lines: LogLine[] = []
  const waiters: Array<{ predicate: (line: LogLine) => boolean, resolve: (line: LogLine) => void }> = []
  return {
    lines,
    add: (line) => {
      lines.push(line)
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.predicate(line)) {
          waiters[i]!.resolve(line)
          waiters.splice(i, 1)
        }
      }
    },
    waitFor: async (predicate, what = 'the line awaited') => {
      const found = lines.find(predicate)
      if (found !== undefined) return found
      return await new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (line: LogLine) => { clearTimeout(timer); resolve(line) }
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          const last = lines.slice(-5).map((line) => JSON.stringify(line)).join('\n')
          reject(new Error(`never logged: ${what}; the last lines:\n${last}`))
        }, WAIT_MS)
        waiters.push(waiter)
      })
    }
  }
}
