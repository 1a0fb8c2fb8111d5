/**
 * The relay lets go of its failover gate once the upstream's status has decided the attempt:
 * the gate holds the attempts, and through them the whole request, which a relay held until its
 * stream ends would keep alive (bench/HISTORY.md, session 17: ~3.5 kB more promoted by each
 * scavenge per request on the routed path).
 */
import http from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ResponseRelay, type FailoverGate } from '../../../src/relay/response-relay.js'
import { forceGc, turn } from '../../support/endurance.js'

/** A relay for a real client response, its gate known only through a WeakRef. */
async function relayWithGate (t: Test): Promise<{ relay: ResponseRelay, gate: WeakRef<FailoverGate>, finish: () => Promise<string> }> {
  let resolveRes: (res: http.ServerResponse) => void
  const gotRes = new Promise<http.ServerResponse>((resolve) => { resolveRes = resolve })
  const server = http.createServer((_req, res) => resolveRes(res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const { port } = server.address() as { port: number }
  const answer = request(`http://127.0.0.1:${port}/`)
  const res = await gotRes
  const relay = makeRelay(res)
  return {
    relay: relay.relay,
    gate: relay.gate,
    finish: async () => {
      relay.relay.onComplete()
      return await (await answer).body.text()
    }
  }
}

/** In a function of its own, so no local of the test holds the gate. */
function makeRelay (res: http.ServerResponse): { relay: ResponseRelay, gate: WeakRef<FailoverGate> } {
  const gate: FailoverGate = { onStatus: () => 'relay', onFailure: () => 'relay' }
  const relay = new ResponseRelay(res, performance.now(), () => {}, undefined, gate)
  relay.onConnect(() => {})
  return { relay, gate: new WeakRef(gate) }
}

t.test('the gate is held until the status decides, and let go once it has, while the stream goes on', async (t) => {
  const { relay, gate, finish } = await relayWithGate(t)
  await turn() // a WeakRef's target is kept until the job that made it ends
  forceGc()
  t.ok(gate.deref() !== undefined, 'before the status: held (a failure then may still be retried)')
  relay.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/plain')], () => {}, 'OK')
  relay.onData(Buffer.from('first bytes;'))
  await turn()
  forceGc()
  t.equal(gate.deref(), undefined, 'decided: let go, though the relay is still streaming')
  relay.onData(Buffer.from(' the rest'))
  t.equal(await finish(), 'first bytes; the rest', 'the answer is whole')
})
