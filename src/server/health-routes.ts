import type { FastifyInstance } from 'fastify'
import type { StoreHealth } from '../session/session-store.js'

export interface Readiness {
  /** False once shutdown has begun: load balancers should stop sending new work. */
  ready (): boolean
  store (): StoreHealth
}

/**
 * `/healthz`: the process answers. `/readyz`: it should be sent traffic. A degraded session
 * store (Redis away) still serves, from local decisions, so it is ready and says so.
 */
export async function healthRoutes (app: FastifyInstance, readiness: Readiness): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    const store = readiness.store()
    if (!readiness.ready()) return await reply.code(503).send({ status: 'shutting_down', store })
    return { status: store.state === 'ok' ? 'ready' : 'degraded', store }
  })
}
