/**
 * The stack's floor: bare Fastify with @fastify/http-proxy (reply-from over undici), adding
 * two fixed session headers with `rewriteRequestHeaders`. Fastify's logger is off.
 *
 *   UPSTREAM_ORIGIN=http://127.0.0.1:9000 PORT=8082 node fastify-http-proxy.mjs
 *
 * PORT=0 takes any free port; the line `listening on http://127.0.0.1:PORT` says which.
 */
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
import { POOL_OPTIONS } from './pool-options.mjs'

const origin = process.env.UPSTREAM_ORIGIN
const port = Number(process.env.PORT)
const SESSION = '0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'

const app = Fastify({
  logger: false,
  keepAliveTimeout: 75_000,
  connectionTimeout: 0,
  bodyLimit: 64 * 1024 * 1024
})
await app.register(proxy, {
  upstream: origin,
  prefix: '/v1',
  rewritePrefix: '/v1',
  undici: { ...POOL_OPTIONS },
  replyOptions: {
    rewriteRequestHeaders: (_request, headers) => ({ ...headers, session_id: SESSION, 'session-id': SESSION })
  }
})
const address = await app.listen({ port, host: '127.0.0.1' })
process.stdout.write(`listening on ${address}\n`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
