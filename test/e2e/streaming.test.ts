import t from 'tap'
import { request } from 'undici'
import { randomChunks, replySse, responseStream } from '../support/mock-upstream.js'
import { startGatewayWithUpstream } from '../support/gateway.js'

t.test('SSE arrives byte for byte however the upstream chunks it, multi-byte characters included', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)

  const stream = Buffer.from(responseStream('resp_utf8', 'naïve café — 日本語 🚀 done'))
  for (const seed of [1, 2, 3, 42, 1234]) {
    upstream.handle(replySse(randomChunks(stream, seed, 7)))
    const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json' } })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.statusCode, 200)
    t.ok(body.equals(stream), `seed ${seed}: bytes identical`)
  }
})

t.test('each chunk reaches the client before the upstream sends the next (no buffering)', async (t) => {
  const { upstream, gateway } = await startGatewayWithUpstream(t)

  const events = responseStream('resp_unbuffered', 'hello').split(/(?<=\n\n)/)
  let clientSaw: (text: string) => void = () => {}
  const received: string[] = []
  // The upstream only writes event i+1 after the client has read event i through the gateway.
  upstream.handle(replySse(events, async () => await new Promise<void>((resolve) => { clientSaw = () => resolve() })))
  const res = await request(`${gateway.baseURL}/responses`, { method: 'POST', body: '{}' })
  for await (const chunk of res.body) {
    received.push(chunk.toString())
    clientSaw(chunk.toString())
  }
  t.equal(received.join(''), events.join(''))
  t.ok(received.length >= events.length, 'the client read the stream piece by piece')
})
