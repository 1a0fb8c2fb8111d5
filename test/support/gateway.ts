/**
 * Starts the real gateway in-process on a loopback port, configured as a user would
 * (environment-style settings), with its log lines captured for assertions.
 */
import { Writable } from 'node:stream'
import { buildGateway, type Gateway } from '../../src/server/build-gateway.js'
import { loadConfig, type GatewayConfig } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observe/logger.js'

export interface RunningGateway {
  /** `http://127.0.0.1:PORT` */
  origin: string
  /** `http://127.0.0.1:PORT/v1`: what a client's base URL is set to. */
  baseURL: string
  port: number
  config: GatewayConfig
  gateway: Gateway
  /** Every JSON log line written so far, parsed. */
  logs: Array<Record<string, unknown>>
  /** The raw log text, for "never contains" assertions. */
  logText: () => string
  /** Resolves when a log line matching `predicate` has been written. */
  waitForLog: (predicate: (line: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
  close: () => Promise<number>
}

export async function startGateway (env: Record<string, string>): Promise<RunningGateway> {
  const config = loadConfig({ env: { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env } })
  const logs: Array<Record<string, unknown>> = []
  let text = ''
  const waiters: Array<{ predicate: (line: Record<string, unknown>) => boolean, resolve: (line: Record<string, unknown>) => void }> = []
  const sink = new Writable({
    write (chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8')
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        const parsed = JSON.parse(line) as Record<string, unknown>
        logs.push(parsed)
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.predicate(parsed)) {
            waiters[i]!.resolve(parsed)
            waiters.splice(i, 1)
          }
        }
      }
      done()
    }
  })
  const gateway = buildGateway(config, { logger: createLogger(config.log.level, sink) })
  const origin = await gateway.listen()
  const port = Number(new URL(origin).port)
  let closed: Promise<number> | undefined
  return {
    origin,
    baseURL: `${origin}/v1`,
    port,
    config,
    gateway,
    logs,
    logText: () => text,
    waitForLog: async (predicate) => {
      const found = logs.find(predicate)
      if (found !== undefined) return found
      return await new Promise((resolve) => waiters.push({ predicate, resolve }))
    },
    close: async () => {
      closed ??= gateway.close()
      return await closed
    }
  }
}
