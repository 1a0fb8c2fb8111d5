import { createServer } from 'node:http'
import { settingName } from '../config/load-config.js'
import { errors } from '../errors.js'
import type { GatewayMetrics } from '../observe/metrics.js'
import { listen } from './listen.js'
import type { SideRoutes } from './side-routes.js'

/** `GET /metrics` on the main port (when no `METRICS_PORT` is set). */
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

/**
 * `/metrics` on its own port, so scraping stays off the proxy's listener (and its firewall
 * rules). A bare node:http server: it serves one path.
 */
export async function startMetricsServer (metrics: GatewayMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      errors.notFound(req.method ?? 'GET', req.url ?? '/').send(res)
      return
    }
    metrics.render().then(({ contentType, body }) => {
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body)
    }, () => {
      errors.internal().send(res)
    })
  })
  const address = await listen(server, host, port, { host: settingName('server.host'), port: settingName('metrics.port'), serves: '/metrics' })
  return {
    address,
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
