/**
 * Load with integrity: 2,000 streamed requests in flight through one gateway at once, each in
 * its own session and with its own randomly chunked stream, every byte checked; afterwards the
 * gateway holds nothing of them (no exchange, socket, file descriptor or request object).
 *
 * Everything runs in this one process: the gateway holds 2 sockets per exchange (client and
 * upstream side) and the test's client and mock upstream hold 2 more, so 2,000 exchanges need
 * about 8,000 descriptors (`ulimit -n` is 20000 on the CI machine; the test says so if it is less).
 */
import { readFileSync } from 'node:fs'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { randomChunks, responseStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { activeStreams, forceGc, gate, openFds, sha256, trackSockets, turn } from '../support/endurance.js'

const STREAMS = 2_000
/**
 * `npm run stress:contention` runs the check ENDURANCE_ROUNDS times in a row with a busy
 * process on every core beside it (ENDURANCE_CONTENTION=1); `npm test` runs it once, quietly.
 */
const ROUNDS = Number(process.env.ENDURANCE_ROUNDS ?? 1)
const CONTENTION = process.env.ENDURANCE_CONTENTION === '1'

const maxOpenFiles = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1])
if (maxOpenFiles < 4 * STREAMS + 256) throw new Error(`this test needs ${4 * STREAMS + 256} file descriptors; ulimit -n is ${maxOpenFiles}`)
/** Descriptors a run may leave open for good: lazily created ones (e.g. libuv's epoll/eventfd), not per-request ones. */
const FD_SLACK = 16

interface Planned {
  session: string
  chunks: Buffer[]
  sha: string
  bytes: number
}

/** Request i's session and the stream the upstream answers it with: multi-byte text, its own chunking. */
function plan (i: number): Planned {
  const text = `answer ${i}: naïve café — 日本語 🚀 ${'ü'.repeat(i % 97)} ${'€'.repeat((i * 7) % 53)} done`
  const stream = Buffer.from(responseStream(`resp_load_${i}`, text), 'utf8')
  return { session: `load-${i}-${sha256(String(i)).slice(0, 12)}`, chunks: randomChunks(stream, i + 1, 16 + (i % 240)), sha: sha256(stream), bytes: stream.length }
}

if (CONTENTION) {
  // Busy loops on every core, as another workload beside the gateway would be.
  const burners = Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
  t.teardown(() => { for (const burner of burners) burner.kill('SIGKILL') })
}

for (let round = 1; round <= ROUNDS; round++) {
  t.test(`${STREAMS} concurrent streams arrive byte-identical, each upstream request in its own session, and nothing is left behind${ROUNDS > 1 ? ` (round ${round} of ${ROUNDS}${CONTENTION ? ', under CPU contention' : ''})` : ''}`, async (t) => {
    await concurrentStreams(t)
  })
}

async function concurrentStreams (t: Test): Promise<void> {
  const fdsBefore = openFds()
  const planned = Array.from({ length: STREAMS }, (_, i) => plan(i))
  const bySession = new Map(planned.map((p) => [p.session, p]))

  // The upstream holds every answer until all STREAMS requests have reached it: they are
  // provably in flight through the gateway at the same time.
  const allArrived = gate()
  let arrived = 0
  const upstream: MockUpstream = await startMockUpstream(async (req, res) => {
    const p = bySession.get(String(req.headers['session-id']))
    if (++arrived === STREAMS) allArrived.open()
    await allArrived.opened
    if (p === undefined) {
      res.writeHead(500).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
    for (let c = 0; c < p.chunks.length; c++) {
      if (res.destroyed) return
      res.write(p.chunks[c])
      // Yield now and then, so the streams interleave and chunks reach the gateway as separate reads.
      if (c % 2 === 1) await nextTurn()
    }
    res.end()
  })
  let gateway: RunningGateway | undefined
  t.teardown(async () => { await gateway?.close(); await upstream.close() })
  gateway = await startGateway({ UPSTREAM_URL: upstream.url })
  const gatewaySockets = trackSockets(gateway.gateway.server)
  const upstreamSockets = trackSockets(upstream.server)
  // Weak references to the gateway's side of every exchange: after the run, nothing should hold them.
  const exchanges: Array<WeakRef<object>> = []
  gateway.gateway.server.on('request', (_req, res) => { exchanges.push(new WeakRef(res)) })

  const clients = new Agent({ connections: STREAMS, pipelining: 1 })
  const scraper = new Agent({ connections: 1 })
  const results = planned.map(async (p) => {
    const res = await request(`${gateway!.baseURL}/responses`, {
      dispatcher: clients,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'session-id': p.session },
      body: JSON.stringify({ model: 'gpt-test', input: `question for ${p.session}`, stream: true })
    })
    const body = Buffer.from(await res.body.arrayBuffer())
    return { status: res.statusCode, sha: sha256(body), bytes: body.length, error: undefined as string | undefined }
  }).map(async (result, i) => await result.catch((err: Error & { code?: string }) => {
    // A stream the client lost: keep going, and say below who broke it.
    return { status: 0, sha: '', bytes: 0, error: `${err.code ?? err.name}: ${err.message} (${planned[i]!.session})` }
  }))

  await allArrived.opened
  t.equal(await activeStreams(gateway.origin, scraper), STREAMS, `the gateway counts ${STREAMS} exchanges in flight at once`)

  const done = await Promise.all(results)
  const wrong = done.flatMap((r, i) => r.status === 200 && r.sha === planned[i]!.sha ? [] : [{ i, ...r, expected: planned[i]!.bytes }])
  t.same(wrong.slice(0, 5), [], `every response is byte-identical to what the upstream sent for it (${wrong.length} differ)`)
  for (const lost of wrong.slice(0, 5)) {
    // Who broke it: the gateway's log line (ended_by, error) and whether the upstream was cut.
    const session = planned[lost.i]!.session
    const line = gateway.logs.find((l) => l.msg === 'request' && l.session === session)
    const seenUpstream = upstream.requests.find((r) => r.headers['session-id'] === session)
    t.comment(`lost ${session}: client ${lost.error ?? `status ${lost.status}, ${lost.bytes} of ${lost.expected} bytes`}; gateway ${JSON.stringify({ ended_by: line?.ended_by, error: line?.error, status: line?.status, bytes_out: line?.bytes_out })}; upstream ${seenUpstream === undefined ? 'never saw it' : seenUpstream.abortedByPeer() ? 'was cut' : 'finished'}`)
  }

  // Every upstream request carried its own session, under both spellings, exactly once.
  t.equal(upstream.requests.length, STREAMS, 'one upstream request per client request')
  const seen = new Map<string, number>()
  let mismatched = 0
  for (const req of upstream.requests) {
    const id = String(req.headers['session-id'])
    if (req.headers.session_id !== id || !bySession.has(id)) mismatched++
    seen.set(id, (seen.get(id) ?? 0) + 1)
  }
  t.equal(mismatched, 0, 'session_id and session-id are equal, and are the client\'s id')
  t.equal(seen.size, STREAMS, 'every session reached the upstream, none twice')
  await Promise.all(upstream.requests.map(async (req) => await req.closed))
  t.equal(upstream.requests.filter((req) => req.abortedByPeer()).length, 0, 'no upstream response was cut short')

  // Every exchange logged once, as complete, with the whole body counted.
  const lines = await Promise.all(planned.map(async (p) => await gateway!.waitForLog((l) => l.msg === 'request' && l.session === p.session)))
  t.equal(lines.filter((l, i) => l.ended_by === 'complete' && l.status === 200 && l.bytes_out === planned[i]!.bytes).length, STREAMS, 'each exchange is logged complete with its bytes')

  // The gateway's own bookkeeping is back to nothing once the clients have gone.
  t.equal(await activeStreams(gateway.origin, scraper), 0, 'active_streams is back to 0')
  await clients.close()
  await scraper.close()
  await gatewaySockets.allClosed()
  t.ok(gatewaySockets.accepted() >= STREAMS, `the clients used ${gatewaySockets.accepted()} connections`)
  t.equal(await gatewaySockets.open(), 0, 'the gateway holds no client connection once the clients closed')

  // One upstream connection per exchange in flight (one request per connection at a time), none
  // opened again for a retry; idle ones stay pooled until the gateway closes.
  t.equal(upstreamSockets.accepted(), STREAMS, 'the gateway opened exactly one upstream connection per concurrent exchange')

  // No finished exchange is still referenced by the running gateway.
  await turn()
  forceGc()
  await turn()
  const retained = exchanges.filter((ref) => ref.deref() !== undefined).length
  t.equal(exchanges.length, STREAMS + 2, 'the gateway saw every request (and the two scrapes)')
  t.equal(retained, 0, 'no finished exchange is still held by the gateway after a full GC')

  // Closing the gateway closes its pooled upstream connections; the process is back to its descriptors.
  await gateway.close()
  gateway = undefined
  await upstreamSockets.allClosed()
  t.equal(await upstreamSockets.open(), 0, 'closing the gateway closed every upstream connection')
  await upstream.close()
  await turn()
  const fdsAfter = openFds()
  t.ok(fdsAfter <= fdsBefore + FD_SLACK, `file descriptors: ${fdsBefore} before, ${fdsAfter} after (slack ${FD_SLACK})`)
}
