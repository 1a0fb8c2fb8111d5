#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { loadConfig, type GatewayConfig } from './config/load-config.js'
import { ConfigError } from './config/settings.js'
import { createGateway } from './server/build-gateway.js'
import type { Logger } from './observe/logger.js'
import { ListenError } from './server/listener.js'
import { upstreamTarget } from './upstream/upstream-path.js'

const USAGE = `Usage: session-gateway [--config FILE]

Runs the gateway. Settings come from defaults, then the YAML file (--config FILE or
CONFIG_FILE), then environment variables; see config.example.yaml.
Exits 2 on a configuration error, 1 when it cannot start otherwise (a port in use).`

/**
 * 2: the configuration (or command line) is wrong, and starting again will not help (systemd's
 * RestartPreventExitStatus=2). 1: anything else, a listener that could not bind among them: the
 * port may be free and the host name resolvable on the next try.
 */
const EXIT_CONFIG = 2
const EXIT_FAILED = 1

function main (): void {
  let args
  try {
    args = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } })
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`)
  }
  if (args.values.help === true) {
    process.stdout.write(USAGE + '\n')
    return
  }
  let config: GatewayConfig
  try {
    // CONFIG_FILE="" counts as unset, as every other empty variable does in loadConfig.
    const file = args.values.config ?? (process.env.CONFIG_FILE === '' ? undefined : process.env.CONFIG_FILE)
    config = loadConfig({ file, env: process.env })
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
  start(config).catch((err: NodeJS.ErrnoException) => {
    fail(err instanceof ListenError ? err.message : `cannot start: ${err.code ?? ''} ${err.message}`.trim(), EXIT_FAILED)
  })
}

async function start (config: GatewayConfig): Promise<void> {
  const gateway = await createGateway(config)
  const { logger } = gateway
  const address = await gateway.listen()
  logger.info({ address, upstreams: upstreamsForLog(config) }, 'session-gateway listening')
  const metricsAddress = gateway.metricsAddress()
  // METRICS_PORT=0 takes any free port: this line says which.
  if (metricsAddress !== undefined) logger.info({ address: metricsAddress }, 'metrics listening')

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal: no more waiting for load balancers (SHUTDOWN_DELAY_MS).
      logger.info({ signal }, 'shutting down: delay skipped')
      void gateway.close()
      return
    }
    stopping = true
    logger.info({ signal, grace_ms: config.server.shutdownGraceMs }, 'shutting down: draining in-flight requests')
    gateway.close().then((cut) => {
      logger.info({ cut }, 'shut down')
      exitOnceLogged(logger, 0)
    }, (err: unknown) => {
      logger.error({ err }, 'shutdown failed')
      exitOnceLogged(logger, 1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

/**
 * Exits once the last lines are written. Shutdown is over: whatever is still pending (an export
 * to a collector that never answers, its retry and timeout timers) must not keep the process
 * alive, deaf to further signals, for up to the exporter's timeouts.
 */
function exitOnceLogged (logger: Logger, code: number): void {
  process.exitCode = code
  logger.flush(() => process.exit(code))
}

/** Upstream name → origin and base path: a url's query (Azure's api-version, or a key) is left out. */
function upstreamsForLog ({ upstreams }: GatewayConfig): Record<string, string> {
  return Object.fromEntries(upstreams.map(({ name, url }) => {
    const { origin, basePath } = upstreamTarget(url)
    return [name, origin + basePath]
  }))
}

function fail (message: string, status = EXIT_CONFIG): never {
  process.stderr.write(`session-gateway: ${message}\n`)
  process.exit(status)
}

main()
