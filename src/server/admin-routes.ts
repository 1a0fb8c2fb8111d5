import { timingSafeEqual } from 'node:crypto'
import { errors } from '../errors.js'
import { bearerToken, sha256 } from '../http/bearer.js'
import type { CacheHistory } from '../observe/cache-history.js'
import { toCallView } from '../session/call-record.js'
import type { SessionStore } from '../session/session-store.js'
import type { SessionUsage } from '../session/session-usage.js'
import { ADMIN_PAGE } from './admin-page.js'
import { sendJson, type SideRoutes } from './side-routes.js'

export interface AdminDeps {
  store: SessionStore
  /** Per-minute totals of this process's model calls, for the hit ratio over time. */
  history: CacheHistory
  /** '' = no token: the routes are served only because the gateway listens on loopback. */
  token: string
}

const MAX_PAGE = 500

/**
 * `/gateway/`: per-session usage (requests, tokens, cache hit ratio) as JSON and as a small
 * page. Registered only when `ADMIN_TOKEN` is set or the gateway listens on loopback.
 */
export function adminRoutes (routes: SideRoutes, { store, history, token }: AdminDeps): void {
  const tokenDigest = token === '' ? undefined : sha256(token)
  routes.guard('/gateway', ({ req, url }) => {
    if (tokenDigest === undefined) return undefined
    const presented = bearerToken(req.headers.authorization)
    if (presented !== undefined && timingSafeEqual(sha256(presented), tokenDigest)) return undefined
    // The page itself is public (it holds no data); it asks for the token and sends it.
    if (url.pathname === '/gateway/' || url.pathname === '/gateway') return undefined
    return errors.adminUnauthorized()
  })

  routes.get('/gateway/', ({ res }) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(ADMIN_PAGE)
  })
  routes.get('/gateway', ({ res }) => { res.writeHead(302, { location: '/gateway/' }).end() })

  routes.get('/gateway/sessions', async ({ res, url }) => {
    const limit = wholeNumber(url, 'limit', 50, 1, MAX_PAGE)
    const offset = wholeNumber(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER)
    const page = await store.recentUsage(limit, offset)
    const data = await Promise.all(page.sessions.map(async (usage) => await withUpstream(store, usage)))
    sendJson(res, 200, { object: 'list', data, total: page.total, total_approximate: page.approximate === true, limit, offset })
  })

  routes.get('/gateway/sessions/:id', async ({ res, params: [id = ''] }) => {
    const usage = await store.usage(id)
    if (usage === undefined) throw errors.sessionNotFound(id)
    sendJson(res, 200, await withUpstream(store, usage))
  })

  routes.get('/gateway/sessions/:id/requests', async ({ res, params: [id = ''] }) => {
    const calls = await store.calls(id)
    if (calls === undefined) throw errors.sessionNotFound(id)
    sendJson(res, 200, { object: 'list', data: calls.map(toCallView) })
  })

  routes.get('/gateway/cache-history', ({ res }) => { sendJson(res, 200, { object: 'list', data: history.series() }) })
}

/** The session's upstream, with several upstreams (a session is bound to one only then). */
async function withUpstream (store: SessionStore, usage: SessionUsage): Promise<SessionUsage & { upstream?: string }> {
  const upstream = await store.peekUpstream(usage.id)
  return upstream === undefined ? usage : { ...usage, upstream }
}

/**
 * A whole-number query parameter, held to [min, max] (the page's `limit` and `offset` say what
 * was used); anything else (`abc`, `1.5`, empty) is a 400 naming the parameter.
 */
function wholeNumber (url: URL, name: string, absent: number, min: number, max: number): number {
  const text = url.searchParams.get(name)
  if (text === null) return absent
  if (!/^-?\d+$/.test(text)) throw errors.invalidParameter(name, `a whole number, from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`)
  return Math.min(max, Math.max(min, Number(text)))
}
