/**
 * Starts the real gateway in-process on a loopback port, configured as a user would
 * (environment-style settings), with its log lines captured for assertions.
 */
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { Writable } from 'node:stream'
import { buildGateway, type Gateway } from '../../src/server/build-gateway.js'
import { loadConfig, type GatewayConfig } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observe/logger.js'
import { createSessionStore } from '../../src/session/create-store.js'
import type { SessionStore } from '../../src/session/session-store.js'
import { logLines } from './log-lines.js'
import { startMockUpstream, type MockUpstream, type UpstreamHandler } from './mock-upstream.js'

/** What the helpers here need of a tap test: somewhere to register cleanup. */
export interface Teardown { teardown: (fn: () => Promise<void>) => void }

export interface RunningGateway {
  /** `http://127.0.0.1:PORT` */
  origin: string
  /** `http://127.0.0.1:PORT/v1`: what a client's base URL is set to. */
  baseURL: string
  port: number
  config: GatewayConfig
  gateway: Gateway
  /** Its session store, for what no route shows (a call record's prefix fingerprint). */
  store: SessionStore
  /** Every JSON log line written so far, parsed. */
  logs: Array<Record<string, unknown>>
  /** The raw log text, for "never contains" assertions. */
  logText: () => string
  /** Resolves when a log line matching `predicate` has been written. */
  waitForLog: (predicate: (line: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
  close: () => Promise<number>
}

/** `file`: a YAML config file (`--config`), under `env` as with the CLI. */
export async function startGateway (env: Record<string, string>, file?: string): Promise<RunningGateway> {
  const config = loadConfig({ file, env: { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env } })
  const log = logLines()
  let text = ''
  const sink = new Writable({
    write (chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8')
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') log.add(JSON.parse(line) as Record<string, unknown>)
      }
      done()
    }
  })
  // What createGateway does, with the store kept at hand.
  const logger = createLogger(config.log.level, sink)
  const store = await createSessionStore(config, logger)
  const gateway = buildGateway(config, { logger, store })
  const origin = await gateway.listen()
  const port = Number(new URL(origin).port)
  let closed: Promise<number> | undefined
  return {
    origin,
    baseURL: `${origin}/v1`,
    port,
    config,
    gateway,
    store,
    logs: log.lines,
    logText: () => text,
    waitForLog: log.waitFor,
    close: async () => {
      closed ??= gateway.close()
      return await closed
    }
  }
}

/**
 * A mock upstream (answering with `handler`, by default `{"ok":true}`) and a gateway in front of
 * it (`UPSTREAM_URL` = the upstream's `/v1`, plus `env`), both closed at teardown.
 */
export async function startGatewayWithUpstream (t: Teardown, env: Record<string, string> = {}, handler?: UpstreamHandler): Promise<{ upstream: MockUpstream, gateway: RunningGateway }> {
  const upstream = await startMockUpstream(handler)
  let gateway: RunningGateway
  try {
    gateway = await startGateway({ UPSTREAM_URL: upstream.url, ...env })
  } catch (err) {
    await upstream.close() // a refused configuration must not leave the upstream listening
    throw err
  }
  t.teardown(async () => { await gateway.close(); await upstream.close() })
  return { upstream, gateway }
}

/** A gateway whose UPSTREAM_URL is a loopback port that was just free: nothing listens there. Closed at teardown. */
export async function startGatewayWithUnreachableUpstream (t: Teardown, env: Record<string, string> = {}): Promise<RunningGateway> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const gateway = await startGateway({ UPSTREAM_URL: `http://127.0.0.1:${port}/v1`, ...env })
  t.teardown(async () => { await gateway.close() })
  return gateway
}
