import { createServer, type ServerOptions } from 'node:http'
import { settingName } from '../config/load-config.js'
import { METRICS_ROUTES } from '../errors.js'
import type { Logger } from '../observe/logger.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import { answerUnparsedRequests, listen } from './listener.js'
import { SideRoutes } from './side-routes.js'

/** `GET /metrics` (and HEAD; a query is ignored): on the main port, or on its own listener. */
export function metricsRoutes (routes: SideRoutes, { metrics }: { metrics: GatewayMetrics }): void {
  routes.get('/metrics', async ({ res }) => {
    const { contentType, body } = await metrics.render()
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body)
  })
}

export interface MetricsServer {
  address: string
  close (): Promise<void>
}

export interface MetricsServerDeps {
  metrics: GatewayMetrics
  logger: Logger
  /** The main listener's timeouts and header limit (`listenerOptions`). */
  options: ServerOptions
}

/**
 * `/metrics` on its own port, so scraping stays off the proxy's listener (and its firewall
 * rules). The same small router as the main port's own routes, with only this route: its
 * 404s say so, and requests Node cannot parse get the same OpenAI-style answers.
 */
export async function startMetricsServer ({ metrics, logger, options }: MetricsServerDeps, host: string, port: number): Promise<MetricsServer> {
  const routes = new SideRoutes(logger, METRICS_ROUTES)
  metricsRoutes(routes, { metrics })
  const server = createServer(options, routes.handle)
  answerUnparsedRequests(server)
  const address = await listen(server, host, port, { host: settingName('server.host'), port: settingName('metrics.port'), serves: '/metrics' })
  return {
    address,
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
