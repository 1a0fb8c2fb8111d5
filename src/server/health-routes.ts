import type { FastifyInstance } from 'fastify'
import type { StoreHealth } from '../session/session-store.js'
import type { HealthReport } from '../upstream/upstream-health.js'

export interface UpstreamReadiness extends HealthReport {
  name: string
  group: string
}

export interface Readiness {
  /** False once shutdown has begun: load balancers should stop sending new work. */
  accepting (): boolean
  store (): StoreHealth
  /** Several upstreams: each one's state. Absent with one upstream, which is not judged. */
  upstreams: (() => UpstreamReadiness[]) | undefined
}

/**
 * `/healthz`: the process answers. `/readyz`: it should be sent traffic. A degraded session
 * store (Redis away) still serves, from local decisions, so it is ready and says so. With
 * several upstreams it lists each one's state, and is ready while at least one is healthy.
 */
export async function healthRoutes (app: FastifyInstance, readiness: Readiness): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    const store = readiness.store()
    if (!readiness.accepting()) return await reply.code(503).send({ status: 'shutting_down', store })
    const status = store.state === 'ok' ? 'ready' : 'degraded'
    if (readiness.upstreams === undefined) return { status, store }
    const upstreams = readiness.upstreams()
    // Ready while one upstream takes traffic: requests fail over to it.
    if (!upstreams.some((u) => u.state === 'healthy')) return await reply.code(503).send({ status: 'no_healthy_upstream', store, upstreams })
    return { status, store, upstreams }
  })
}
