/**
 * The runtime's floor: `node:http` in front, undici's dispatcher behind, nothing else.
 * Forwards method, path and headers (less hop-by-hop ones and Host), adds two fixed session
 * headers, streams the request body up and relays the response as it arrives, with
 * backpressure. No logging, no sessions, no observing.
 *
 *   UPSTREAM_ORIGIN=http://127.0.0.1:9000 PORT=8081 node node-undici-proxy.mjs
 *
 * PORT=0 takes any free port; the line `listening on http://127.0.0.1:PORT` says which.
 */
import { createServer } from 'node:http'
import { Agent } from 'undici'
import { POOL_OPTIONS } from './pool-options.mjs'

const origin = process.env.UPSTREAM_ORIGIN
const port = Number(process.env.PORT)
const SESSION = '0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect'])

const upstream = new Agent(POOL_OPTIONS)

function withoutHopByHop (raw) {
  const out = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = typeof raw[i] === 'string' ? raw[i] : raw[i].toString('latin1')
    if (!DROPPED.has(name.toLowerCase())) out.push(name, typeof raw[i + 1] === 'string' ? raw[i + 1] : raw[i + 1].toString('latin1'))
  }
  return out
}

const server = createServer((req, res) => {
  const headers = withoutHopByHop(req.rawHeaders)
  headers.push('session_id', SESSION, 'session-id', SESSION)
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0'
  let abort
  let resume
  res.on('drain', () => resume?.())
  res.on('close', () => { if (!res.writableFinished) abort?.(new Error('client gone')) })
  upstream.dispatch({ origin, path: req.url, method: req.method, headers, body: hasBody ? req : null }, {
    onConnect (abortRequest) { abort = abortRequest },
    onHeaders (status, rawHeaders, resumeUpstream, statusText) {
      if (status < 200) return true
      resume = resumeUpstream
      res.writeHead(status, statusText, withoutHopByHop(rawHeaders))
      return true
    },
    onData (chunk) { return res.write(chunk) },
    onComplete () { res.end() },
    onError () {
      if (res.headersSent) {
        res.destroy()
      } else {
        res.writeHead(502, { 'content-type': 'application/json' })
        res.end('{"error":{"message":"upstream failed"}}')
      }
    }
  })
})
server.keepAliveTimeout = 75_000
server.listen({ port, host: '127.0.0.1' }, () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`))
process.on('SIGTERM', () => process.exit(0))
