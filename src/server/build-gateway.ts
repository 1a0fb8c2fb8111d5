import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Agent } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import { createLogger, type Logger } from '../observe/logger.js'
import { SessionResolver } from '../session/resolve-session.js'
import { createSessionStore } from '../session/create-store.js'
import { createUpstreamAgent } from '../upstream/upstream-agent.js'
import { answerClientError } from './client-errors.js'
import { healthRoutes } from './health-routes.js'
import { proxyRoutes } from './proxy-route.js'

export interface Gateway {
  app: FastifyInstance
  logger: Logger
  /** Starts listening; resolves to the bound address, e.g. `http://127.0.0.1:8080`. */
  listen (): Promise<string>
  /**
   * Stops accepting, lets in-flight requests finish for up to `server.shutdown_grace_ms`, then
   * cuts what is left. Resolves to the number of requests that had to be cut.
   */
  close (): Promise<number>
}

export interface GatewayOptions {
  logger?: Logger
}

/** Wires the gateway's parts together: config → sessions, upstream pool, routes, server. */
export function buildGateway (config: GatewayConfig, options: GatewayOptions = {}): Gateway {
  const logger = options.logger ?? createLogger(config.log.level)
  const upstream: Agent = createUpstreamAgent(config.upstream)
  const store = createSessionStore(config, logger)
  const sessions = new SessionResolver(store)
  const inFlight = { count: 0 }
  let accepting = true

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request is written by the relay when it ends; Fastify's own would double it.
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    requestTimeout: config.server.requestTimeoutMs,
    connectionTimeout: 0, // an idle socket mid-stream is the upstream's idle timeout's call
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: 8192 },
    clientErrorHandler: answerClientError
  })
  app.server.headersTimeout = config.server.headersTimeoutMs

  app.setNotFoundHandler((request, reply) => {
    const error = errors.notFound(request.method, request.url.split('?')[0] ?? '/')
    reply.code(error.status).type('application/json; charset=utf-8').send(error.body())
  })
  app.setErrorHandler((err, _request, reply) => {
    const error = err instanceof GatewayError ? err : errors.internal()
    if (!(err instanceof GatewayError)) logger.error({ err }, 'unhandled error')
    reply.code(error.status).type('application/json; charset=utf-8').send(error.body())
  })

  app.register(healthRoutes, { accepting: () => accepting, store: () => store.health() })
  app.register(proxyRoutes, { config, sessions, upstream, logger, inFlight })

  return {
    app,
    logger,
    async listen () {
      return await app.listen({ host: config.server.host, port: config.server.port })
    },
    async close () {
      accepting = false
      let cut = 0
      const grace = setTimeout(() => {
        // Streams still running after the grace period are cut; the upstream ones with them.
        cut = inFlight.count
        app.server.closeAllConnections()
      }, config.server.shutdownGraceMs)
      try {
        await app.close()
      } finally {
        clearTimeout(grace)
      }
      await (cut > 0 ? upstream.destroy() : upstream.close())
      await store.close()
      return cut
    }
  }
}
