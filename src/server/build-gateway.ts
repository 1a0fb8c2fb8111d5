import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config/load-config.js'
import { isLoopbackHost, isManaged } from '../config/load-config.js'
import { errors, GatewayError } from '../errors.js'
import { createLogger, type Logger } from '../observe/logger.js'
import { GatewayMetrics } from '../observe/metrics.js'
import { Admission } from '../proxy/admission.js'
import { ClientAuth } from '../proxy/client-auth.js'
import { createForwarder } from '../proxy/http-entry.js'
import { RateLimiter } from '../proxy/rate-limit.js'
import { acceptWebSockets } from '../proxy/websocket-entry.js'
import { createSessionStore } from '../session/create-store.js'
import { SessionResolver } from '../session/resolve-session.js'
import { createUpstreamAgent } from '../upstream/upstream-agent.js'
import { isProxyTarget } from '../upstream/upstream-path.js'
import { startUpstreamProbes } from '../upstream/upstream-probe.js'
import { UpstreamSet } from '../upstream/upstream-set.js'
import { adminRoutes } from './admin-routes.js'
import { answerClientError, refuseConnect } from './client-errors.js'
import { Drain } from './drain.js'
import { healthRoutes } from './health-routes.js'
import { metricsRoutes, startMetricsServer, type MetricsServer } from './metrics-routes.js'

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

/** Wires the gateway's parts together: config → sessions, upstream pool, entries, server. */
export function buildGateway (config: GatewayConfig, options: GatewayOptions = {}): Gateway {
  const logger = options.logger ?? createLogger(config.log.level)
  const upstream = createUpstreamAgent(config.upstream)
  const store = createSessionStore(config, logger)
  const sessions = new SessionResolver(store)
  const upstreams = new UpstreamSet(config)
  const metrics = new GatewayMetrics(() => store.size(), {
    names: upstreams.all.map((u) => u.name),
    isHealthy: (name) => upstreams.get(name)?.health.isHealthy() ?? false
  })
  const drain = new Drain()
  const admission = new Admission({
    config,
    // Where a path is valid does not depend on the upstream: the first one's target checks it.
    target: upstreams.all[0]!.target,
    auth: new ClientAuth(isManaged(config), config.auth.gatewayApiKeys),
    sessions,
    drain,
    rateLimiter: config.limits.requestsPerMinute > 0 ? new RateLimiter(config.limits.requestsPerMinute) : undefined
  })
  const exchanges = { logger, metrics, sessions, drain }
  const attempts = { metrics, sessions, logger }
  const entryDeps = { config, admission, exchanges, sessions, upstream, upstreams, attempts, logger }
  const forward = createForwarder(entryDeps)
  const app = createApp(config, logger, forward)
  acceptWebSockets(app.server, entryDeps)
  const stopProbes = upstreams.single === undefined ? startUpstreamProbes(upstreams.all, upstream, logger) : () => {}
  app.register(healthRoutes, {
    accepting: () => drain.accepting,
    store: () => store.health(),
    // One upstream is not judged (as before routing): /readyz says nothing of it.
    upstreams: upstreams.single === undefined ? () => upstreams.all.map((u) => ({ name: u.name, group: u.group, ...u.health.report() })) : undefined
  })
  if (config.metrics.port === -1) app.register(metricsRoutes, { metrics })
  if (adminRoutesServed(config)) app.register(adminRoutes, { store, token: config.admin.token })
  let metricsServer: MetricsServer | undefined

  return {
    app,
    logger,
    async listen () {
      const address = await app.listen({ host: config.server.host, port: config.server.port })
      if (config.metrics.port !== -1) metricsServer = await startMetricsServer(metrics, config.server.host, config.metrics.port)
      return address
    },
    metricsAddress: () => metricsServer?.address,
    async close () {
      stopProbes()
      const cut = await drain.run(app.server, config.server.shutdownGraceMs, async () => await app.close())
      // Streams cut after the grace period take their upstream requests with them.
      await (cut > 0 ? upstream.destroy() : upstream.close())
      await store.close()
      await metricsServer?.close()
      return cut
    }
  }
}

/**
 * Usage is nobody's business off this host unless an admin token guards it; in managed mode
 * not even on loopback (in a pod every container shares it), since the gateway's key pays.
 */
function adminRoutesServed (config: GatewayConfig): boolean {
  return config.admin.token !== '' || (isLoopbackHost(config.server.host) && !isManaged(config))
}

/**
 * The HTTP server and Fastify around it. Proxied requests skip Fastify (routing,
 * request/reply objects, hooks): the server hands /v1 targets straight to the forwarder.
 * Health, metrics and admin routes are Fastify's.
 */
function createApp (config: GatewayConfig, logger: Logger, forward: (req: IncomingMessage, res: ServerResponse) => void): FastifyInstance {
  const app = Fastify({
    serverFactory: (fastifyHandler) => createServer({
      maxHeaderSize: config.server.maxHeaderBytes,
      // Node enforces headersTimeout only on this interval's ticks (default 30 s): without it a
      // slowloris held its socket for up to 30 s past SERVER_HEADERS_TIMEOUT_MS.
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.server.headersTimeoutMs / 2))
    }, (req, res) => {
      if (isProxyTarget(req.url ?? '/')) forward(req, res)
      else fastifyHandler(req, res)
    }),
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request is written when its exchange ends; Fastify's own would double it.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // During a drain /readyz answers its own 503 (shutting_down) and /v1 gets an OpenAI-style 503.
    return503OnClosing: false,
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: 8192 },
    clientErrorHandler: answerClientError,
    // Requests Fastify's router refuses before any route runs, answered OpenAI-style too.
    frameworkErrors: (error, _request, reply) => {
      (error.code === 'FST_ERR_BAD_URL' ? errors.badUrl() : errors.malformedRequest()).send(reply.raw)
    }
  })
  // With a serverFactory these are ours to set (Fastify sets them only on servers it creates).
  app.server.keepAliveTimeout = config.server.keepAliveTimeoutMs
  app.server.requestTimeout = config.server.requestTimeoutMs
  app.server.setTimeout(0) // an idle socket mid-stream is the upstream's idle timeout's call
  app.server.headersTimeout = config.server.headersTimeoutMs
  // Node's default (2,000) drops later headers silently, a session-id among them; the header
  // block is bounded by MAX_HEADER_BYTES instead.
  app.server.maxHeadersCount = 0
  app.server.on('connect', refuseConnect)

  app.setNotFoundHandler((request, reply) => errors.notFound(request.method, request.url.split('?')[0] ?? '/').reply(reply))
  app.setErrorHandler((err, _request, reply) => {
    if (!(err instanceof GatewayError)) logger.error({ err }, 'unhandled error')
    return (err instanceof GatewayError ? err : errors.internal()).reply(reply)
  })
  return app
}
