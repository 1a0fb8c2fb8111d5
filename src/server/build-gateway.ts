import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { GatewayConfig } from '../config/load-config.js'
import { isLoopbackHost, isManaged, settingName } from '../config/load-config.js'
import { mainRoutes } from '../errors.js'
import { createLogger, type Logger } from '../observe/logger.js'
import { CacheHistory } from '../observe/cache-history.js'
import { CallRecorder } from '../observe/call-recorder.js'
import type { CacheRules } from '../observe/cache-outcome.js'
import { GatewayMetrics } from '../observe/metrics.js'
import { startTracing } from '../observe/tracing.js'
import { Admission } from '../proxy/admission.js'
import { ClientAuth } from '../proxy/client-auth.js'
import type { ExchangeDeps } from '../proxy/exchange.js'
import { createForwarder } from '../proxy/http-entry.js'
import { RateLimiter } from '../proxy/rate-limit.js'
import { acceptWebSockets } from '../proxy/websocket-entry.js'
import { createSessionStore } from '../session/create-store.js'
import { SessionResolver } from '../session/resolve-session.js'
import type { SessionStore } from '../session/session-store.js'
import { createUpstreamAgent } from '../upstream/upstream-agent.js'
import { isProxyTarget } from '../upstream/upstream-path.js'
import { startUpstreamProbes } from '../upstream/upstream-probe.js'
import { UpstreamSet } from '../upstream/upstream-set.js'
import { adminRoutes } from './admin-routes.js'
import { Drain } from './drain.js'
import { healthRoutes, type UpstreamReadiness } from './health-routes.js'
import { answerUnparsedRequests, listen, listenerOptions } from './listener.js'
import { metricsRoutes, startMetricsServer, type MetricsServer } from './metrics-routes.js'
import { SideRoutes } from './side-routes.js'

export interface Gateway {
  server: Server
  logger: Logger
  /** The separate metrics listener's address, when `METRICS_PORT` is set. */
  metricsAddress (): string | undefined
  /** Starts listening; resolves to the bound address, e.g. `http://127.0.0.1:8080`. */
  listen (): Promise<string>
  /**
   * After `server.shutdown_delay_ms` (readiness 503, still serving), stops listening, serves
   * what reached open connections, lets in-flight requests finish for up to
   * `server.shutdown_grace_ms`, then cuts what is left. Resolves to the number of requests that had to be cut.
   */
  close (): Promise<number>
}

export interface GatewayOptions {
  logger?: Logger
  /** The session store, made with `createSessionStore` (see `createGateway`). */
  store: SessionStore
}

/** Makes the session store the config asks for, then the gateway around it. */
export async function createGateway (config: GatewayConfig, options: { logger?: Logger } = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.log.level)
  return buildGateway(config, { logger, store: await createSessionStore(config, logger) })
}

/** Longest the shutdown waits for the last spans to reach the collector. */
const TRACE_FLUSH_MS = 5_000

/** Wires the gateway's parts together: config → sessions, upstreams, entries, server. */
export function buildGateway (config: GatewayConfig, options: GatewayOptions): Gateway {
  const logger = options.logger ?? createLogger(config.log.level)
  logConfigWarnings(logger, config)
  const upstream = createUpstreamAgent(config.upstream)
  const { store } = options
  const upstreams = new UpstreamSet(config)
  const sessions = new SessionResolver(store, { groupOf: upstreams.spansGroups ? (name) => upstreams.get(name)?.group : undefined })
  const metrics = new GatewayMetrics(() => store.size(), {
    names: upstreams.all.map((u) => u.name),
    isHealthy: (name) => upstreams.get(name)?.health.isHealthy() ?? false
  })
  const drain = new Drain()
  const history = new CacheHistory()
  const calls = new CallRecorder({ store, metrics, history, rules: cacheRules(config), analysis: config.cache.analysis, logger })
  const exchanges: ExchangeDeps = { logger, metrics, sessions, drain, tracer: undefined, calls }
  // Loaded before the first request: listen() awaits it. Off, nothing is imported.
  const tracing = startTracing(config.tracing, logger)
  tracing.catch(() => {}) // reported by listen(), not as an unhandled rejection meanwhile
  const admission = createAdmission(config, upstreams, sessions, drain)
  const entryDeps = { config, admission, exchanges, sessions, upstream, upstreams, attempts: { metrics, sessions, logger }, logger }
  const served = { metrics: config.metrics.port === -1, admin: adminRoutesServed(config) }
  const routes = new SideRoutes(logger, mainRoutes(served))
  healthRoutes(routes, { ready: () => drain.ready, store: () => store.health(), upstreams: upstreamReadiness(upstreams) })
  if (served.metrics) metricsRoutes(routes, { metrics })
  if (served.admin) adminRoutes(routes, { store, history, token: config.admin.token })
  const server = createHttpServer(config, createForwarder(entryDeps), routes)
  acceptWebSockets(server, entryDeps)
  const stopProbes = upstreams.single === undefined ? startUpstreamProbes(upstreams.all, config.upstream, logger) : async () => {}
  let metricsServer: MetricsServer | undefined
  let closing: Promise<number> | undefined

  return {
    server,
    logger,
    async listen () {
      exchanges.tracer = await tracing
      if (exchanges.tracer !== undefined) logTracing(logger, config)
      const address = await listen(server, config.server.host, config.server.port, { host: settingName('server.host'), port: settingName('server.port') })
      // The main listener is not left open behind a metrics listener that failed.
      if (config.metrics.port !== -1) metricsServer = await startMetricsServer({ metrics, logger, options: listenerOptions(config) }, config.server.host, config.metrics.port).catch((err: unknown) => { server.close(); throw err })
      return address
    },
    metricsAddress: () => metricsServer?.address,
    async close () {
      // Asked again while closing (a second SIGTERM): skip what is left of the delay.
      if (closing !== undefined) {
        drain.skipDelay()
        return await closing
      }
      const probesStopped = stopProbes()
      closing = drain.run(server, { delayMs: config.server.shutdownDelayMs, graceMs: config.server.shutdownGraceMs }).then(async (cut) => {
        // Streams cut after the grace period take their upstream requests with them.
        await (cut > 0 ? upstream.destroy() : upstream.close())
        await Promise.all([probesStopped, store.close(), metricsServer?.close(), exchanges.tracer?.shutdown(TRACE_FLUSH_MS), metrics.close()])
        return cut
      })
      return await closing
    }
  }
}

function createAdmission (config: GatewayConfig, upstreams: UpstreamSet, sessions: SessionResolver, drain: Drain): Admission {
  return new Admission({
    config,
    // Where a path is valid does not depend on the upstream: the first one's target checks it.
    target: upstreams.all[0]!.target,
    auth: new ClientAuth(isManaged(config), config.auth.gatewayApiKeys),
    sessions,
    drain,
    rateLimiter: config.limits.requestsPerMinute > 0 ? new RateLimiter(config.limits.requestsPerMinute) : undefined
  })
}

/** Settings that do nothing as configured, e.g. a lone upstream's probe_path: probes start only for several (above). */
function logConfigWarnings (logger: Logger, { warnings }: GatewayConfig): void {
  for (const warning of warnings ?? []) logger.warn({ setting: warning.key }, warning.message)
}

/** Several upstreams: each one's state for /readyz. One upstream is not judged (as before routing). */
function upstreamReadiness (upstreams: UpstreamSet): (() => UpstreamReadiness[]) | undefined {
  if (upstreams.single !== undefined) return undefined
  return () => upstreams.all.map((u) => ({ name: u.name, group: u.group, ...u.health.report() }))
}

function cacheRules ({ cache }: GatewayConfig): CacheRules {
  return { minTokens: cache.minTokens, idleMs: cache.idleSeconds * 1000 }
}

/** Where spans go; the OTLP headers are secrets and are not logged, nor the URL's credentials or query. */
function logTracing (logger: Logger, { tracing }: GatewayConfig): void {
  const endpoint = new URL(tracing.endpoint)
  logger.info({ endpoint: endpoint.origin + endpoint.pathname, protocol: tracing.protocol, sampler: tracing.sampler }, 'tracing: exporting spans over OTLP')
}

/**
 * Usage is nobody's business off this host unless an admin token guards it; in managed mode
 * not even on loopback (in a pod every container shares it), since the gateway's key pays.
 */
function adminRoutesServed (config: GatewayConfig): boolean {
  return config.admin.token !== '' || (isLoopbackHost(config.server.host) && !isManaged(config))
}

/**
 * The HTTP server. Proxied requests (/v1) go straight to the forwarder; the gateway's own few
 * routes (health, metrics, admin) to its small router.
 */
function createHttpServer (config: GatewayConfig, forward: (req: IncomingMessage, res: ServerResponse) => void, routes: SideRoutes): Server {
  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    if (isProxyTarget(req.url ?? '/')) forward(req, res)
    else routes.handle(req, res)
  }
  const server = createServer(listenerOptions(config), dispatch)
  // Node would answer `Expect: 100-continue` at once; the forwarder answers it once the request
  // is admitted, so a refused upload (401, 413, 429…) is never sent at all.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!isProxyTarget(req.url ?? '/')) res.writeContinue()
    dispatch(req, res)
  })
  server.setTimeout(0) // an idle socket mid-stream is the upstream's idle timeout's call
  // Node's default (2,000) drops later headers silently, a session-id among them; the header
  // block is bounded by MAX_HEADER_BYTES instead.
  server.maxHeadersCount = 0
  answerUnparsedRequests(server)
  return server
}
