/**
 * A probe's timeout is its own setting, `probe_timeout_ms` (default 5000), not its interval. Its
 * timeout used to be `probe_interval_ms`: with a short interval, a healthy upstream whose probe
 * answered a little slower than that (a busy host) was ejected. And one upstream's probes never
 * overlap: the next starts `probe_interval_ms` after the last one ended. The timeout holds for a
 * connect that hangs too (undici cuts a request only once it is on a connection).
 */
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import { startGateway, type RunningGateway, type Teardown } from '../support/gateway.js'
import { replyJson, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'

const EJECTED = 'upstream ejected: its health probe failed'
const MODELS = { object: 'list', data: [] }

interface SlowUpstream {
  upstream: MockUpstream
  /** The most requests it held at once. */
  mostAtOnce: () => number
  /** Resolves once `count` requests have ended: answered, or closed by the gateway. */
  ended: (count: number) => Promise<void>
}

/** An upstream whose every answer takes `delayMs`. */
async function slowUpstream (delayMs: number): Promise<SlowUpstream> {
  const reply = replyJson(MODELS)
  let inFlight = 0
  let most = 0
  let ended = 0
  const waiters: Array<{ count: number, resolve: () => void }> = []
  const upstream = await startMockUpstream((req, res, raw) => {
    most = Math.max(most, ++inFlight)
    const answer = setTimeout(() => reply(req, res, raw), delayMs)
    void req.closed.then(() => {
      clearTimeout(answer)
      inFlight--
      ended++
      for (const waiter of waiters.filter((w) => w.count <= ended)) waiter.resolve()
    })
  })
  return {
    upstream,
    mostAtOnce: () => most,
    ended: async (count) => { if (ended < count) await new Promise<void>((resolve) => waiters.push({ count, resolve })) }
  }
}

/** Resolves once `upstream` has received `count` requests. */
async function requestsSeen (upstream: MockUpstream, count: number): Promise<void> {
  while (upstream.requests.length < count) await upstream.nextRequest()
}

/**
 * A gateway routing to `probed` (its probe settings in `spec`) and to a healthy upstream named
 * `well`, with `env` besides; both upstreams are closed with the test.
 */
async function gatewayWithProbed (t: Teardown, probed: MockUpstream, spec: object, env: Record<string, string>): Promise<RunningGateway> {
  const well = await startMockUpstream(replyJson(MODELS))
  t.teardown(probed.close)
  t.teardown(well.close)
  return await startGateway({ UPSTREAMS: JSON.stringify([{ url: probed.url, probe_path: '/models', ...spec }, { name: 'well', url: well.url }]), ...env })
}

async function upstreamState (origin: string, name: string): Promise<string | undefined> {
  const ready = await (await fetch(`${origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string }> }
  return ready.upstreams.find((u) => u.name === name)?.state
}

t.test('a probe slower than its interval but within its timeout keeps its upstream healthy, and is never sent twice at once', async (t) => {
  // Answers in 1.5 s, well past its interval (and past undici's coarse timer for the old
  // timeout, which fired 0.5 to 1 s in rather than at 200 ms), well within the default timeout.
  const { upstream: slow, mostAtOnce, ended } = await slowUpstream(1_500)
  // probe_timeout_ms left at its default. One failed probe would eject it: a single one that timed out shows.
  const gateway = await gatewayWithProbed(t, slow, { name: 'slow', probe_interval_ms: 200 }, { UPSTREAM_FAILURES_TO_EJECT: '1' })
  t.teardown(gateway.close)

  // Two probes ended (answered, or cut by a timeout), and a third sent: with probes one at a
  // time, it was sent after the gateway had taken the second's answer in.
  await ended(2)
  await requestsSeen(slow, 3)
  t.same(gateway.logs.filter((line) => line.msg === EJECTED), [], 'no probe failed')
  t.equal(await upstreamState(gateway.origin, 'slow'), 'healthy', '/readyz says healthy')
  t.equal(mostAtOnce(), 1, 'one probe at a time: none was sent while the last was unanswered')
  t.ok(slow.requests.every((req) => req.method === 'GET' && req.url === '/v1/models'), 'every request was a probe')
})

t.test('a probe that takes longer than probe_timeout_ms is cut there, and its failure ejects the upstream and is logged', async (t) => {
  // Never answers: only the probe's timeout ends each probe.
  const hung = await startMockUpstream(() => {})
  const gateway = await gatewayWithProbed(t, hung, { name: 'hung', probe_interval_ms: 100, probe_timeout_ms: 300 }, { UPSTREAM_FAILURES_TO_EJECT: '2' })
  t.teardown(gateway.close)

  const ejected = await gateway.waitForLog((line) => line.msg === EJECTED && line.upstream === 'hung')
  t.match(ejected, { level: 'warn', upstream: 'hung', probe_error: 'PROBE_TIMEOUT' }, 'the warn line says the probe timed out')
  t.equal(await upstreamState(gateway.origin, 'hung'), 'ejected', '/readyz says ejected')
  t.ok(hung.requests.length >= 2, 'after UPSTREAM_FAILURES_TO_EJECT (2) probes')
  await hung.requests[0]!.closed
  t.ok(hung.requests[0]!.abortedByPeer(), 'the gateway gave up on the unanswered probe: it closed its request')
})

t.test('closing the gateway cuts a probe in flight at once, and counts it against no upstream', async (t) => {
  const hung = await startMockUpstream(() => {})
  const gateway = await gatewayWithProbed(t, hung, { name: 'hung', probe_interval_ms: 100 }, { UPSTREAM_FAILURES_TO_EJECT: '1' })
  const first = await hung.nextRequest()
  await gateway.close()
  await first.closed
  // Had the close waited for the probe's timeout (5 s), the cut probe would have ejected its upstream.
  t.ok(first.abortedByPeer(), 'the unanswered probe was cut by the close')
  t.same(gateway.logs.filter((line) => line.msg === EJECTED), [], 'and not logged as a failed probe')
  t.equal(hung.requests.length, 1, 'no probe after the close')
})

t.test('regression: a probe whose connect hangs (a TLS handshake never answered) is cut at probe_timeout_ms, not at the longer connect_timeout_ms', async (t) => {
  // Takes TCP connections and never says a word: the TLS handshake, part of the connect, hangs.
  const held = new Set<Socket>()
  const silent = createServer((socket) => {
    socket.on('error', () => {})
    held.add(socket)
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of held) socket.destroy()
    await new Promise<void>((resolve) => silent.close(() => resolve()))
  })
  const { port } = silent.address() as AddressInfo
  const well = await startMockUpstream(replyJson(MODELS))
  t.teardown(well.close)
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([
      { name: 'mute', url: `https://127.0.0.1:${port}/v1`, probe_path: '/models', probe_interval_ms: 100, probe_timeout_ms: 300 },
      { name: 'well', url: well.url }
    ]),
    UPSTREAM_CONNECT_TIMEOUT_MS: '3000',
    UPSTREAM_FAILURES_TO_EJECT: '1'
  })
  t.teardown(gateway.close)

  // undici cuts a request only once it is on a connection: the probe's deadline used to pass
  // unheard, and the connect timeout ended the probe instead, ten times later.
  const ejected = await gateway.waitForLog((line) => line.msg === EJECTED && line.upstream === 'mute')
  t.match(ejected, { upstream: 'mute', probe_error: 'PROBE_TIMEOUT' }, "the probe's own deadline ended it")
})
