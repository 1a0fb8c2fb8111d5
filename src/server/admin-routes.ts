import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { bearerToken, sha256 } from '../http/bearer.js'
import type { SessionStore } from '../session/session-store.js'
import type { SessionUsage } from '../session/session-usage.js'
import { ADMIN_PAGE } from './admin-page.js'

export interface AdminDeps {
  store: SessionStore
  /** '' = no token: the routes are served only because the gateway listens on loopback. */
  token: string
}

const MAX_PAGE = 500

/**
 * `/gateway/`: per-session usage (requests, tokens, cache hit ratio) as JSON and as a small
 * page. Registered only when `ADMIN_TOKEN` is set or the gateway listens on loopback.
 */
export async function adminRoutes (app: FastifyInstance, { store, token }: AdminDeps): Promise<void> {
  const tokenDigest = token === '' ? undefined : sha256(token)
  app.addHook('onRequest', async (request, reply) => {
    if (tokenDigest === undefined) return
    const presented = bearerToken(request.headers.authorization)
    if (presented === undefined || !timingSafeEqual(sha256(presented), tokenDigest)) {
      // The page itself is public (it holds no data); it asks for the token and sends it.
      if (request.url === '/gateway/' || request.url === '/gateway') return
      return await errors.adminUnauthorized().reply(reply)
    }
  })

  app.get('/gateway/', async (_request, reply) => {
    return await reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(ADMIN_PAGE)
  })
  app.get('/gateway', async (_request, reply) => await reply.redirect('/gateway/'))

  app.get('/gateway/sessions', async (request: FastifyRequest<{ Querystring: { limit?: string, offset?: string } }>, reply) => {
    const limit = clamp(Number(request.query.limit ?? 50), 1, MAX_PAGE)
    const offset = clamp(Number(request.query.offset ?? 0), 0, Number.MAX_SAFE_INTEGER)
    const page = await store.recentUsage(limit, offset)
    const data = await Promise.all(page.sessions.map(async (usage) => await withUpstream(store, usage)))
    return await reply.header('cache-control', 'no-store').send({ object: 'list', data, total: page.total, limit, offset })
  })

  app.get('/gateway/sessions/:id', async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const usage = await store.usage(request.params.id)
    if (usage === undefined) return await errors.sessionNotFound(request.params.id).reply(reply)
    return await reply.header('cache-control', 'no-store').send(await withUpstream(store, usage))
  })
}

/** The session's upstream, with several upstreams (a session is bound to one only then). */
async function withUpstream (store: SessionStore, usage: SessionUsage): Promise<SessionUsage & { upstream?: string }> {
  const upstream = await store.upstreamOf(usage.id)
  return upstream === undefined ? usage : { ...usage, upstream }
}

function clamp (value: number, min: number, max: number): number {
  return Number.isFinite(value) ? Math.min(max, Math.max(min, Math.floor(value))) : min
}
