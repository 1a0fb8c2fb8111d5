/**
 * What the cache analysis tap costs on a 5 MiB JSON model call (`npm run bench:cache`):
 *  1. the tap alone: CPU to push a 5 MiB body through PrefixFingerprint in 64 KiB chunks;
 *  2. through the gateway: median time of a 5 MiB POST (session header, so the body streams)
 *     with CACHE_ANALYSIS on and off, alternating ABBA on one kept-alive connection each,
 *     and the median of paired differences.
 */
import { createServer } from 'node:http'
import { Client } from 'undici'
import { PrefixFingerprint } from '../../dist/src/observe/prefix-fingerprint.js'
import { createGateway } from '../../dist/src/server/build-gateway.js'
import { loadConfig } from '../../dist/src/config/load-config.js'
import { createLogger } from '../../dist/src/observe/logger.js'

const MiB = 1024 * 1024
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const tools = Array.from({ length: 30 }, (_, i) => ({ type: 'function', name: `tool_${i}`, description: 'd'.repeat(400), parameters: { type: 'object', properties: { a: { type: 'string' } } } }))
/** A 5 MiB agent history whose items repeat `text`. */
function history (text) {
  const items = []
  let size = 0
  while (size < 5 * MiB) {
    const item = { role: 'user', content: `line ${items.length}: ${text}` }
    items.push(item)
    size += JSON.stringify(item).length
  }
  return Buffer.from(JSON.stringify({ model: 'gpt-5', instructions: 'Be terse. '.repeat(500), tools, input: items, stream: false }))
}
// Quote-heavy: an escaped quote every 12 bytes (JSON or code pasted into messages).
const body = history('lorem ipsum "quoted" \\ '.repeat(40))
// Prose: one quoted word per ~400 bytes.
const prose = history('The quick brown fox jumps over the lazy dog and keeps on running past the river bank. '.repeat(5) + '"fox" ')

function tapAlone (body) {
  const times = []
  for (let round = 0; round < 40; round++) {
    const start = process.cpuUsage()
    const tap = new PrefixFingerprint()
    for (let at = 0; at < body.length; at += 64 * 1024) tap.push(body.subarray(at, at + 64 * 1024))
    if (tap.result() === undefined) throw new Error('no prefix')
    const used = process.cpuUsage(start)
    times.push((used.user + used.system) / 1000)
  }
  return median(times.slice(5))
}

async function throughGateways () {
  const upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.end('{"id":"resp_b","object":"response","usage":{"input_tokens":3000,"input_tokens_details":{"cached_tokens":2900},"output_tokens":1}}'))
  })
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${upstream.address().port}/v1`
  const start = async (analysis) => {
    const config = loadConfig({ env: { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: url, LOG_LEVEL: 'silent', CACHE_ANALYSIS: analysis } })
    const gateway = await createGateway(config, { logger: createLogger('silent') })
    return { gateway, client: new Client(await gateway.listen(), { pipelining: 1 }) }
  }
  const on = await start('true')
  const off = await start('false')
  const send = async ({ client }) => {
    const t0 = performance.now()
    const res = await client.request({ path: '/v1/responses', method: 'POST', body, headers: { 'content-type': 'application/json', 'session-id': 'bench' } })
    await res.body.dump()
    return performance.now() - t0
  }
  const times = { on: [], off: [], diff: [] }
  for (let i = 0; i < 10; i++) { await send(on); await send(off) } // warm up
  for (let i = 0; i < 100; i++) {
    const [a, b] = i % 2 === 0 ? [await send(on), await send(off)] : [undefined, await send(off)]
    const onMs = a ?? await send(on)
    times.on.push(onMs)
    times.off.push(b)
    times.diff.push(onMs - b)
  }
  for (const g of [on, off]) { await g.client.close(); await g.gateway.close() }
  upstream.close()
  return { on: median(times.on), off: median(times.off), added: median(times.diff) }
}

console.log(`node ${process.version}; bodies of ${(body.length / MiB).toFixed(2)} MiB`)
for (const [label, b] of [['quote-heavy', body], ['prose', prose]]) {
  const ms = tapAlone(b)
  console.log(`tap alone, ${label}: ${ms.toFixed(2)} ms CPU per body (${(b.length / MiB / (ms / 1000)).toFixed(0)} MiB/s)`)
}
const e2e = await throughGateways()
console.log(`through the gateway, quote-heavy: analysis on ${e2e.on.toFixed(2)} ms, off ${e2e.off.toFixed(2)} ms, paired difference ${e2e.added.toFixed(2)} ms (medians of 100)`)
