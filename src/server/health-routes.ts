import type { StoreHealth } from '../session/session-store.js'
import { sendJson, type SideRoutes } from './side-routes.js'

export interface Readiness {
  /** False once shutdown has begun: load balancers should stop sending new work. */
  ready (): boolean
  store (): StoreHealth
}

/**
 * `/healthz`: the process answers. `/readyz`: it should be sent traffic. A degraded session
 * store (Redis away) still serves, from local decisions, so it is ready and says so.
 */
export function healthRoutes (routes: SideRoutes, readiness: Readiness): void {
  routes.get('/healthz', ({ res }) => { sendJson(res, 200, { status: 'ok' }) })
  routes.get('/readyz', ({ res }) => {
    const store = readiness.store()
    if (!readiness.ready()) sendJson(res, 503, { status: 'shutting_down', store })
    else sendJson(res, 200, { status: store.state === 'ok' ? 'ready' : 'degraded', store })
  })
}
