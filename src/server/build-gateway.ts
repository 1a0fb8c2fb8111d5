import { createServer } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Agent } from 'undici'
import type { GatewayConfig } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import { createLogger, type Logger } from '../observe/logger.js'
import { GatewayMetrics } from '../observe/metrics.js'
import { upstreamHeaderRules } from '../upstream/request-headers.js'
import { isLoopbackHost } from '../config/load-config.js'
import rateLimit from '@fastify/rate-limit'
import { adminRoutes } from './admin-routes.js'
import { ClientAuth } from './client-auth.js'
import { metricsRoutes, startMetricsServer, type MetricsServer } from './metrics-routes.js'
import { SessionResolver } from '../session/resolve-session.js'
import { createSessionStore } from '../session/create-store.js'
import { createUpstreamAgent } from '../upstream/upstream-agent.js'
import { answerClientError, refuseConnect } from './client-errors.js'
import { healthRoutes } from './health-routes.js'
import { createForwarder, isProxyTarget, proxyRoutes } from './proxy-route.js'
import { websocketRoutes } from '../websocket/upgrade-route.js'
import { sendGatewayError } from '../relay/response-relay.js'

export interface Gateway {
  app: FastifyInstance
  logger: Logger
  /** The separate metrics listener's address, when `METRICS_PORT` is set. */
  metricsAddress (): string | undefined
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
  const metrics = new GatewayMetrics(() => store.size())
  const auth = new ClientAuth(config.auth.upstreamApiKey !== '', config.auth.gatewayApiKeys)
  const upstreamHeaders = upstreamHeaderRules({
    defaultOriginator: config.session.originator,
    upstreamApiKey: config.auth.upstreamApiKey,
    extra: config.upstreamHeaders
  })
  let metricsServer: MetricsServer | undefined
  let accepting = true

  const forward = createForwarder({ config, sessions, upstream, logger, metrics, auth, upstreamHeaders, inFlight, accepting: () => accepting })
  // Proxied requests skip Fastify (routing, request/reply objects, hooks): the server hands
  // /v1 targets straight to the forwarder. Only a rate limit, a Fastify plugin, needs them routed.
  const proxyDirect = config.limits.requestsPerMinute === 0

  const app = Fastify({
    serverFactory: (fastifyHandler) => createServer({
      maxHeaderSize: config.limits.maxHeaderBytes,
      // Node enforces headersTimeout only on this interval's ticks (default 30 s): without it a
      // slowloris held its socket for up to 30 s past SERVER_HEADERS_TIMEOUT_MS.
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.server.headersTimeoutMs / 2))
    }, (req, res) => {
      if (proxyDirect && isProxyTarget(req.url ?? '/')) forward(req, res)
      else fastifyHandler(req, res)
    }),
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request is written by the relay when it ends; Fastify's own would double it.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // During a drain /readyz answers its own 503 (shutting_down) and /v1 gets an OpenAI-style 503.
    return503OnClosing: false,
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: 8192 },
    clientErrorHandler: answerClientError,
    // Requests Fastify's router refuses before any route runs, answered OpenAI-style too.
    frameworkErrors: (error, _request, reply) => {
      const answer = error.code === 'FST_ERR_BAD_URL' ? errors.badUrl() : errors.malformedRequest()
      sendGatewayError(reply.raw, answer)
    }
  })
  // With a serverFactory these are ours to set (Fastify sets them only on servers it creates).
  app.server.keepAliveTimeout = config.server.keepAliveTimeoutMs
  app.server.requestTimeout = config.server.requestTimeoutMs
  app.server.setTimeout(0) // an idle socket mid-stream is the upstream's idle timeout's call
  app.server.headersTimeout = config.server.headersTimeoutMs
  app.server.on('connect', refuseConnect)

  app.setNotFoundHandler((request, reply) => {
    const error = errors.notFound(request.method, request.url.split('?')[0] ?? '/')
    reply.code(error.status).type('application/json; charset=utf-8').send(error.body())
  })
  app.setErrorHandler((err, _request, reply) => {
    const error = err instanceof GatewayError ? err : errors.internal()
    if (!(err instanceof GatewayError)) logger.error({ err }, 'unhandled error')
    reply.code(error.status).type('application/json; charset=utf-8').send(error.body())
  })

  if (config.limits.requestsPerMinute > 0) {
    app.register(rateLimit, {
      max: config.limits.requestsPerMinute,
      timeWindow: 60_000,
      // Per client key (hashed, never logged), else per address.
      keyGenerator: (request) => ClientAuth.keyId(request.headers) ?? request.ip,
      allowList: (request) => !request.url.startsWith('/v1'),
      // Thrown by the plugin, then written by the error handler as an OpenAI-style 429.
      errorResponseBuilder: (_request, context) => errors.rateLimited(Math.ceil(context.ttl / 1000))
    })
  }
  app.register(healthRoutes, { accepting: () => accepting, store: () => store.health() })
  if (config.metricsPort === -1) app.register(metricsRoutes, { metrics })
  // Usage is nobody's business off this host unless an admin token guards it.
  if (config.admin.token !== '' || isLoopbackHost(config.server.host)) app.register(adminRoutes, { store, token: config.admin.token })
  app.register(proxyRoutes, { forward })
  app.register(websocketRoutes, { config, sessions, upstream, logger, metrics, auth, upstreamHeaders, inFlight })

  return {
    app,
    logger,
    async listen () {
      const address = await app.listen({ host: config.server.host, port: config.server.port })
      if (config.metricsPort !== -1) metricsServer = await startMetricsServer(metrics, config.server.host, config.metricsPort)
      return address
    },
    metricsAddress: () => metricsServer?.address,
    async close () {
      accepting = false
      let cut = 0
      const grace = setTimeout(() => {
        // Streams still running after the grace period are cut; the upstream ones with them.
        cut = inFlight.count
        app.server.closeAllConnections()
      }, config.server.shutdownGraceMs)
      // Node keeps a keep-alive connection open after its response has finished, even while the
      // server is closing, so a stream that drains would hold close() until the grace timer.
      // While draining, idle connections are closed as they appear (no per-request hook needed).
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100)
      try {
        await app.close()
      } finally {
        clearTimeout(grace)
        clearInterval(sweep)
      }
      await (cut > 0 ? upstream.destroy() : upstream.close())
      await store.close()
      await metricsServer?.close()
      return cut
    }
  }
}
