import type { FastifyInstance } from 'fastify'

export interface Readiness {
  /** False once shutdown has begun: load balancers should stop sending new work. */
  accepting (): boolean
}

/** `/healthz`: the process answers. `/readyz`: it should be sent traffic. */
export async function healthRoutes (app: FastifyInstance, readiness: Readiness): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    if (!readiness.accepting()) return reply.code(503).send({ status: 'shutting_down' })
    return { status: 'ready' }
  })
}
