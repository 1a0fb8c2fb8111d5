import type { StoreHealth } from '../session/session-store.js'
import type { HealthReport } from '../upstream/upstream-health.js'
import { sendJson, type SideRoutes } from './side-routes.js'

export interface UpstreamReadiness extends HealthReport {
  name: string
  group: string
}

export interface Readiness {
  /** False once shutdown has begun: load balancers should stop sending new work. */
  ready (): boolean
  store (): StoreHealth
  /** Several upstreams: each one's state. Absent with one upstream, which is not judged. */
  upstreams: (() => UpstreamReadiness[]) | undefined
}

/**
 * `/healthz`: the process answers. `/readyz`: it should be sent traffic. A degraded session
 * store (Redis away) still serves, from local decisions, so it is ready and says so. With
 * several upstreams it lists each one's state, and is ready while at least one is healthy.
 */
export function healthRoutes (routes: SideRoutes, readiness: Readiness): void {
  routes.get('/healthz', ({ res }) => { sendJson(res, 200, { status: 'ok' }) })
  routes.get('/readyz', ({ res }) => {
    const store = readiness.store()
    if (!readiness.ready()) return sendJson(res, 503, { status: 'shutting_down', store })
    const status = store.state === 'ok' ? 'ready' : 'degraded'
    if (readiness.upstreams === undefined) return sendJson(res, 200, { status, store })
    const upstreams = readiness.upstreams()
    // Ready while one upstream takes traffic: requests fail over to it.
    if (!upstreams.some((u) => u.state === 'healthy')) return sendJson(res, 503, { status: 'no_healthy_upstream', store, upstreams })
    sendJson(res, 200, { status, store, upstreams })
  })
}
