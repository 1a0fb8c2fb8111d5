/**
 * An upstream its health probe ejects is logged as one ejected by failed requests is: one warn
 * line per ejection, naming the upstream, the cooldown and why the probe failed (its status,
 * or its error's code: never a message, which may quote a URL). Before, only requests'
 * ejections were logged, and a probe's was seen in `/readyz` and metrics alone. A probe whose
 * answer ends an ejection logs the upstream back, also when requests ejected it while the probe
 * was under way (it used to look only at the state the probe started in). A probe answered 429
 * honours its retry-after as a request does (it used to take the configured cooldown).
 */
import t from 'tap'
import { startGateway } from '../support/gateway.js'
import { received, replyJson, startMockUpstream } from '../support/mock-upstream.js'
import { sessionsHomedOn } from '../support/upstream-process.js'

const EJECTED = 'upstream ejected: its health probe failed'
const BACK = 'upstream back: its health probe answered'

t.test('a probe that ejects its upstream logs it once per ejection, with the cooldown and the probe status or error code', async (t) => {
  const failing = await startMockUpstream(replyJson({ error: { message: 'overloaded' } }, 503))
  const gone = await startMockUpstream()
  await gone.close() // nothing listens on its port: each probe's connect is refused
  const well = await startMockUpstream(replyJson({ object: 'list', data: [] }))
  t.teardown(failing.close)
  t.teardown(well.close)
  const probed = { probe_path: '/models', probe_interval_ms: 100 }
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([
      { name: 'failing', url: failing.url, ...probed },
      { name: 'gone', url: gone.url, ...probed },
      { name: 'well', url: well.url, ...probed }
    ]),
    // Short, so the re-ejection after the first cooldown (doubled) is seen too.
    UPSTREAM_COOLDOWN_MS: '300',
    UPSTREAM_MAX_COOLDOWN_MS: '600'
  })
  t.teardown(gateway.close)
  const ejections = (name: string): Array<Record<string, unknown>> => gateway.logs.filter((line) => line.msg === EJECTED && line.upstream === name)

  const first = await gateway.waitForLog((line) => line.msg === EJECTED && line.upstream === 'failing')
  t.match(first, { level: 'warn', upstream: 'failing', cooldown_ms: 300, probe_status: 503 }, 'a warn line names the upstream, its cooldown and the status the probe got')
  t.ok(failing.requests.filter((req) => req.method === 'GET').length >= 3, 'after UPSTREAM_FAILURES_TO_EJECT (3) failed probes')

  const refused = await gateway.waitForLog((line) => line.msg === EJECTED && line.upstream === 'gone')
  t.match(refused, { upstream: 'gone', cooldown_ms: 300, probe_error: 'ECONNREFUSED' }, "a probe that could not connect names its error's code")
  t.notMatch(gateway.logText(), gone.origin, 'no line quotes the upstream url')

  // Probes go on failing while it is ejected: none of those is a new ejection. After the cooldown
  // one more failure ejects it again, for twice as long, and that is logged once more.
  const again = await gateway.waitForLog((line) => line.msg === EJECTED && line.upstream === 'failing' && line.cooldown_ms === 600)
  t.equal(again.probe_status, 503)
  t.same(ejections('failing').map((line) => line.cooldown_ms).slice(0, 2), [300, 600], 'one line per ejection: the first, then the doubled one')
  t.same(ejections('well'), [], 'an upstream whose probe answers is never logged as ejected')
})

t.test('regression: a probe whose answer ends an ejection that requests made while it was under way logs the upstream back', async (t) => {
  const heldProbes: Array<() => void> = []
  // Model calls fail (503); probes are held until the test answers them.
  const slow = await startMockUpstream((req, res, raw) => {
    if (req.method === 'POST') return replyJson({ error: { message: 'overloaded' } }, 503)(req, res, raw)
    heldProbes.push(() => replyJson({ object: 'list', data: [] })(req, res, raw))
  })
  const well = await startMockUpstream(replyJson({ id: 'resp_well', object: 'response' }))
  t.teardown(slow.close)
  t.teardown(well.close)
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([
      { name: 'slow', url: slow.url, probe_path: '/models', probe_interval_ms: 100, probe_timeout_ms: 600000 },
      { name: 'well', url: well.url }
    ]),
    UPSTREAM_FAILURES_TO_EJECT: '1',
    // Longer than the test: only the probe's answer can end the ejection.
    UPSTREAM_COOLDOWN_MS: '600000',
    UPSTREAM_MAX_COOLDOWN_MS: '600000'
  })
  t.teardown(gateway.close)

  await received(slow, (req) => req.method === 'GET') // the first probe, held: slow was healthy when it was sent
  const session = sessionsHomedOn('slow', ['slow', 'well'], 1, 'probe-race')[0]!
  const answer = await fetch(`${gateway.baseURL}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'session-id': session }, body: '{"model":"gpt-test","input":"hi"}' })
  t.equal(answer.status, 200, 'the request failed on slow and was answered by well')
  t.match(gateway.logs.find((line) => line.msg === 'upstream ejected: failed too often in a row'), { upstream: 'slow' }, 'its 503 ejected slow')

  heldProbes[0]!() // the probe answers now, and ends the ejection
  await slow.nextRequest() // the next probe: sent once the last one's answer was taken in
  t.match(gateway.logs.find((line) => line.msg === BACK), { level: 'info', upstream: 'slow' }, 'the probe that ended the ejection says so')
  const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string }> }
  t.equal(ready.upstreams.find((u) => u.name === 'slow')?.state, 'healthy')
})

t.test('regression: a probe answered 429 with retry-after ejects for at least that long, as a request answered so does', async (t) => {
  const limited = await startMockUpstream(replyJson({ error: { message: 'slow down' } }, 429, { 'retry-after': '120' }))
  const well = await startMockUpstream(replyJson({ object: 'list', data: [] }))
  t.teardown(limited.close)
  t.teardown(well.close)
  const probed = { probe_path: '/models', probe_interval_ms: 100 }
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify([{ name: 'limited', url: limited.url, ...probed }, { name: 'well', url: well.url, ...probed }]),
    UPSTREAM_COOLDOWN_MS: '300',
    UPSTREAM_MAX_COOLDOWN_MS: '600'
  })
  t.teardown(gateway.close)
  const ejected = await gateway.waitForLog((line) => line.msg === EJECTED && line.upstream === 'limited')
  t.match(ejected, { level: 'warn', upstream: 'limited', cooldown_ms: 120_000, probe_status: 429 }, 'the cooldown is the retry-after, not the 300 ms configured')
  t.notOk('retryAfterMs' in ejected, 'the line carries the status, as before, and no internal field')
})
