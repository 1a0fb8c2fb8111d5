/**
 * Parsed JSON log lines as they are written, and promises for lines yet to come: what a test
 * waits on, whether the gateway runs in-process or as its own process.
 */
export type LogLine = Record<string, unknown>

export interface LogLines {
  /** Every line added so far, in order. */
  readonly lines: LogLine[]
  /** Adds a line, settling whoever waits for one like it. */
  add: (line: LogLine) => void
  /** Resolves with the first line, already added or still to come, matching `predicate`. */
  waitFor: (predicate: (line: LogLine) => boolean) => Promise<LogLine>
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
    waitFor: async (predicate) => {
      const found = lines.find(predicate)
      if (found !== undefined) return found
      return await new Promise((resolve) => waiters.push({ predicate, resolve }))
    }
  }
}
