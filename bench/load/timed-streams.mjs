/**
 * Opens many long streamed responses at once (the Node upstream's `?bench=timed`) through a
 * proxy and measures, for every delta event, the time from the upstream writing it to this
 * process reading it. Both use the machine's monotonic clock, so the difference is real.
 * A stream counts as an error unless it answered 200 and delivered every event and the final
 * `response.completed`.
 */
import { Agent, request } from 'node:http'
import { monotonicMicros, SENT_MARKER, SMALL_REQUEST } from '../fixtures/responses-sse.mjs'

/**
 * @param options `{ origin, streams, events, intervalMs, openPerSecond }`: `openPerSecond`
 *   spreads the opening of the streams (a burst of 10,000 SYNs overflows any accept backlog).
 * @returns `{ streams, completed, errors, errorKinds, latenciesUs, steadyLatenciesUs, allOpenAfterMs }`:
 *   latencies sorted, in µs; `steadyLatenciesUs` only those of events read after every stream
 *   was open, when the proxy was no longer also accepting new ones.
 */
export async function runTimedStreams ({ origin, streams, events, intervalMs, openPerSecond = Infinity }) {
  const target = new URL(origin)
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  const latencies = []
  const readAt = []
  const errorKinds = {}
  let completed = 0
  let lastOpenedAt = 0
  const startedAt = performance.now()
  const countError = (kind) => { errorKinds[kind] = (errorKinds[kind] ?? 0) + 1 }
  // Generous: the stream's own length, plus time to open everything, plus slack for a loaded box.
  const streamTimeoutMs = events * intervalMs + (streams / Math.min(openPerSecond, 1e6)) * 1000 + 30_000

  const one = () => new Promise((resolve) => {
    let settled = false
    let seen = 0
    let done = false
    let pending = ''
    const finish = (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error !== undefined) countError(error)
      else completed++
      resolve()
    }
    const req = request({
      host: target.hostname,
      port: target.port,
      method: 'POST',
      path: `/v1/responses?bench=timed&events=${events}&interval=${intervalMs}`,
      headers: { 'content-type': 'application/json', 'content-length': SMALL_REQUEST.length },
      agent
    }, (res) => {
      lastOpenedAt = Math.max(lastOpenedAt, performance.now())
      if (res.statusCode !== 200) {
        res.resume()
        finish(`status ${res.statusCode}`)
        return
      }
      res.setEncoding('latin1')
      res.on('data', (text) => {
        const now = monotonicMicros()
        pending += text
        let end = pending.indexOf('\n\n')
        let from = 0
        while (end !== -1) {
          const marker = pending.indexOf(SENT_MARKER, from)
          if (marker !== -1 && marker < end) {
            latencies.push(now - Number(pending.slice(marker + SENT_MARKER.length, pending.indexOf('}', marker))))
            readAt.push(performance.now())
            seen++
          } else if (pending.startsWith('event: response.completed', from)) {
            done = true
          }
          from = end + 2
          end = pending.indexOf('\n\n', from)
        }
        pending = pending.slice(from)
      })
      res.on('end', () => finish(done && seen === events ? undefined : 'incomplete stream'))
      res.on('error', (err) => finish(err.code ?? 'response error'))
      res.on('aborted', () => finish('aborted'))
    })
    const timer = setTimeout(() => { req.destroy(); finish('timeout') }, streamTimeoutMs)
    req.on('error', (err) => finish(err.code ?? err.message))
    req.end(SMALL_REQUEST)
  })

  const all = []
  const gapMs = 1000 / openPerSecond
  for (let i = 0; i < streams; i++) {
    all.push(one())
    // Open in small batches every few milliseconds rather than one timer per stream.
    if (Number.isFinite(gapMs) && i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 50 * gapMs))
  }
  await Promise.all(all)
  agent.destroy()
  return {
    streams,
    completed,
    errors: streams - completed,
    errorKinds,
    latenciesUs: Float64Array.from(latencies).sort(),
    steadyLatenciesUs: Float64Array.from(latencies.filter((_, i) => readAt[i] > lastOpenedAt)).sort(),
    allOpenAfterMs: lastOpenedAt - startedAt
  }
}
