/**
 * The benchmark's Node upstream, run as its own process: `node node-upstream.mjs PORT [PORT…]`
 * (each port its own server, one process serving them all: (f) gives three upstreams that cost
 * the machine what one does). Port 0 takes any free port; once every server listens it prints
 * `listening on http://127.0.0.1:PORT …`, one origin per port asked, in that order.
 *
 *  - any request: reads the whole body, then answers the fixed short stream, with
 *    `x-bench-body-bytes` (and `x-bench-body-sha256` when asked by `x-bench-digest: 1`) so the
 *    bench can check a proxy forwarded the body intact;
 *  - `?bench=timed&events=N&interval=MS`: answers a stream of `response.created`, N delta events
 *    MS apart, each carrying the time it was written (monotonic clock, µs), and
 *    `response.completed`. The first delta comes after a random fraction of MS, so many streams
 *    do not write in lockstep.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { monotonicMicros, SHORT_STREAM, timedCompletedEvent, timedCreatedEvent, timedDeltaEvent } from '../fixtures/responses-sse.mjs'

const ports = process.argv.slice(2).map(Number)
let streams = 0

function answer (req, res) {
  const digest = req.headers['x-bench-digest'] === '1' ? createHash('sha256') : undefined
  let bytes = 0
  req.on('data', (chunk) => {
    bytes += chunk.length
    digest?.update(chunk)
  })
  req.on('end', () => {
    const queryAt = req.url.indexOf('?')
    const query = new URLSearchParams(queryAt === -1 ? '' : req.url.slice(queryAt + 1))
    if (query.get('bench') === 'timed') {
      sendTimedStream(res, Number(query.get('events')), Number(query.get('interval')))
      return
    }
    const headers = {
      'content-type': 'text/event-stream',
      'content-length': SHORT_STREAM.length,
      'x-bench-body-bytes': bytes
    }
    if (digest !== undefined) headers['x-bench-body-sha256'] = digest.digest('hex')
    res.writeHead(200, headers)
    res.end(SHORT_STREAM)
  })
}

function sendTimedStream (res, events, intervalMs) {
  const id = `resp_bench_${process.pid}_${++streams}`
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.write(timedCreatedEvent(id))
  let sent = 0
  let timer
  const next = () => {
    if (sent === events) {
      res.end(timedCompletedEvent(id, events + 1))
      return
    }
    res.write(timedDeltaEvent(++sent, monotonicMicros()))
    timer = setTimeout(next, intervalMs)
  }
  timer = setTimeout(next, Math.random() * intervalMs)
  res.on('close', () => clearTimeout(timer))
}

const origins = await Promise.all(ports.map(async (port) => {
  const server = createServer(answer)
  // Long streams and idle keep-alive connections are the point here: no server-side timeouts.
  server.keepAliveTimeout = 75_000
  server.headersTimeout = 80_000
  server.requestTimeout = 0
  await new Promise((resolve) => server.listen({ port, host: '127.0.0.1', backlog: 4096 }, resolve))
  return `http://127.0.0.1:${server.address().port}`
}))
process.stdout.write(`listening on ${origins.join(' ')}\n`)
process.on('SIGTERM', () => process.exit(0))
