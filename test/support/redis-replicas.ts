/**
 * Routing replicas for the Redis tests: gateways over the same upstream processes and one real
 * redis-server, one of them reaching Redis through a TCP proxy the test cuts for its outages;
 * and the model call that tells which upstream served a session.
 */
import http from 'node:http'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { startGateway, type RunningGateway } from './gateway.js'
import { storeState, until } from './polling.js'
import { startRedis } from './redis-server.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'
import { startUpstreamProcesses, type UpstreamProcess } from './upstream-process.js'

export interface ReplicasSharingRedis {
  ups: UpstreamProcess[]
  /** The test's own client of the Redis both replicas share. */
  shared: Redis
  /** The way `cut` reaches Redis: `proxy.cut()` is its outage, `proxy.restore()` its end. */
  proxy: TcpProxy
  /** Reaches Redis straight. */
  direct: RunningGateway
  /** Reaches Redis through `proxy`. */
  cut: RunningGateway
}

/** Two connected gateways routing over upstream processes named `a` and `b`, sharing one Redis. */
export async function replicasSharingRedis (t: Test): Promise<ReplicasSharingRedis> {
  const redis = await startRedis()
  t.teardown(redis.close)
  const proxy = await startTcpProxy(redis.port)
  t.teardown(proxy.close)
  const shared = new Redis(redis.url)
  t.teardown(() => shared.disconnect())
  const ups = await startUpstreamProcesses(t, ['a', 'b'])
  const upstreams = JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url })))
  const direct = await startGateway({ UPSTREAMS: upstreams, REDIS_URL: redis.url, REDIS_TIMEOUT_MS: '200' })
  t.teardown(direct.close)
  const cut = await startGateway({ UPSTREAMS: upstreams, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_TIMEOUT_MS: '200' })
  t.teardown(cut.close)
  for (const gateway of [direct, cut]) await until(async () => await storeState(gateway), (s) => s === 'ok', 'connected')
  return { ups, shared, proxy, direct, cut }
}

/**
 * A POST /v1/responses for `session` on a connection of its own; resolves with its status and
 * the upstream that answered (the upstream processes name themselves in the body).
 */
export async function callAsSession (gateway: RunningGateway, session: string): Promise<{ status: number, upstream: string | undefined }> {
  const { status, upstream } = await respondAsSession(gateway, session)
  return { status, upstream }
}

/** As callAsSession, with `fields` added to the body; resolves with the response's id too. */
export async function respondAsSession (gateway: RunningGateway, session: string, fields: Record<string, unknown> = {}): Promise<{ status: number, upstream: string | undefined, id: string | undefined }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${gateway.baseURL}/responses`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', connection: 'close', 'session-id': session }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { upstream?: string, id?: string }
        resolve({ status: res.statusCode ?? 0, upstream: answer.upstream, id: answer.id })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(JSON.stringify({ model: 'gpt-test', input: 'hi', ...fields }))
  })
}

/** The upstream that served `session`'s model call through `gateway`. */
export async function servedBy (gateway: RunningGateway, session: string): Promise<string | undefined> {
  return (await callAsSession(gateway, session)).upstream
}
