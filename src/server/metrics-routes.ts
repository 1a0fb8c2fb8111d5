import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { errors } from '../errors.js'
import type { GatewayMetrics } from '../observe/metrics.js'
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const { address, port: bound } = server.address() as AddressInfo
  return {
    address: `http://${address.includes(':') ? `[${address}]` : address}:${bound}`,
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
