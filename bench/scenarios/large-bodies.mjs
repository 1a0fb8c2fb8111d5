/**
 * (d) Large JSON request bodies: a `bytes`-long agent history ending with
 * `previous_response_id`, against one the same length without it. Neither carries a session
 * header and both are `application/json`, so session-gateway reads each whole body before
 * deciding its session (the others stream it through). One request at a time over a kept-alive
 * connection, the two kinds alternating; the figure is the median time from sending the request
 * to the end of the response. The upstream reads the whole body before answering, as the real
 * API does.
 */
import { createHash } from 'node:crypto'
import { Client } from 'undici'
import { largeRequestBodies, SHORT_STREAM } from '../fixtures/responses-sse.mjs'
import { startNodeUpstream } from '../lib/contenders.mjs'
import { median } from '../lib/stats.mjs'
import { keepCorrect, startProxies, stopAll, turnOrder } from './proxies-in-front.mjs'

export async function largeBodies (run) {
  const { rounds, bytes, requestsPerKind } = run.options.large
  const bodies = largeRequestBodies(bytes)
  const upstream = await startNodeUpstream(run)
  const results = { bytes, requestsPerKind, rounds, perProxy: {} }
  let running = []
  try {
    running = await keepCorrect(run, '(d) large bodies', await startProxies(run, upstream), async (server) => {
      await forwardsIntact(server, bodies.withId)
      await forwardsIntact(server, bodies.withoutId)
    })
    for (let round = 0; round < rounds; round++) {
      for (const { proxy, server } of turnOrder(running, round)) {
        const client = new Client(server.origin, { pipelining: 1 })
        try {
          await send(client, bodies.withoutId) // warm the connection
          const withId = []
          const withoutId = []
          for (let i = 0; i < requestsPerKind; i++) {
            // ABBA: neither kind always goes first after the other.
            if (i % 2 === 0) {
              withId.push(await send(client, bodies.withId))
              withoutId.push(await send(client, bodies.withoutId))
            } else {
              withoutId.push(await send(client, bodies.withoutId))
              withId.push(await send(client, bodies.withId))
            }
          }
          // Each pair ran back to back, so its difference cancels whatever else the machine was
          // doing at that moment; the median of the differences is the added time.
          const row = { withIdMs: median(withId), withoutIdMs: median(withoutId), addedMs: median(withId.map((ms, i) => ms - withoutId[i])) }
          run.progress(`(d) round ${round + 1}/${rounds} ${proxy.label}: with previous_response_id ${row.withIdMs.toFixed(2)} ms, without ${row.withoutIdMs.toFixed(2)} ms`)
          ;(results.perProxy[proxy.id] ??= []).push(row)
        } finally {
          await client.close()
        }
      }
    }
  } finally {
    await stopAll(running)
    await upstream.stop()
  }
  return results
}

async function send (client, body) {
  const sentAt = performance.now()
  const response = await client.request({ path: '/v1/responses', method: 'POST', headers: { 'content-type': 'application/json' }, body })
  await response.body.arrayBuffer()
  const elapsed = performance.now() - sentAt
  if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`)
  return elapsed
}

/** The upstream got every byte (length and SHA-256), and the client got the upstream's stream. */
async function forwardsIntact (server, body) {
  const client = new Client(server.origin)
  try {
    const response = await client.request({
      path: '/v1/responses', method: 'POST', headers: { 'content-type': 'application/json', 'x-bench-digest': '1' }, body
    })
    const answer = Buffer.from(await response.body.arrayBuffer())
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`)
    if (Number(response.headers['x-bench-body-bytes']) !== body.length) throw new Error(`upstream got ${response.headers['x-bench-body-bytes']} of ${body.length} body bytes`)
    if (response.headers['x-bench-body-sha256'] !== createHash('sha256').update(body).digest('hex')) throw new Error('upstream got different body bytes')
    if (!answer.equals(SHORT_STREAM)) throw new Error('response body differs from the upstream\'s')
  } finally {
    await client.close()
  }
}
