/**
 * Issue 12's failover promise under load: three upstream processes, clients sending without a
 * pause (several loops, sessions spread over all three), one upstream SIGKILLed mid-traffic and
 * started again later. Every step waits on something observable (a process exit, a request an
 * upstream reported, /readyz, the clients' own records), never on a clock.
 */
import t from 'tap'
import { request } from 'undici'
import { rendezvousOrder } from '../../src/upstream/rendezvous.js'
import { metricValue } from '../support/endurance.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { holdStream, startSteadyTraffic, type TrafficRecord } from '../support/steady-traffic.js'
import { sessionsHomedOn, startUpstreamProcesses } from '../support/upstream-process.js'

const NAMES = ['a', 'b', 'c']
const ranked = (session: string): string[] => rendezvousOrder(session, NAMES.map((name) => ({ name, weight: 1 }))).map((u) => u.name)

async function upstreamState (gateway: RunningGateway, name: string): Promise<string> {
  const ready = await (await fetch(`${gateway.origin}/readyz`)).json() as { upstreams: Array<{ name: string, state: string }> }
  return ready.upstreams.find((u) => u.name === name)!.state
}

/** Polls /readyz until `name` is in `state` (health changes on the gateway's own events, which a test cannot hook). */
async function untilState (gateway: RunningGateway, name: string, state: string): Promise<void> {
  while (await upstreamState(gateway, name) !== state) await new Promise((resolve) => setTimeout(resolve, 20))
}

/** A request the upstream named in its body reads and never answers (the others answer it). */
async function stalledOn (gateway: RunningGateway, upstream: string, session: string): Promise<{ status: number, upstream: unknown }> {
  const res = await request(`${gateway.baseURL}/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'session-id': session },
    body: JSON.stringify({ model: 'gpt-test', input: 'hi', stall_on: upstream })
  })
  await res.body.dump()
  return { status: res.statusCode, upstream: res.headers['x-upstream'] }
}

t.test('an upstream killed under steady traffic: only its flowing streams are lost, its sessions move once and stay, the others never move, and it takes new sessions when back', async (t) => {
  const ups = await startUpstreamProcesses(t, NAMES)
  const victim = ups[0]!
  // Short cooldowns, so the restarted upstream is tried again soon; passive health only.
  const gateway = await startGateway({
    UPSTREAMS: JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url }))),
    UPSTREAM_COOLDOWN_MS: '200',
    UPSTREAM_MAX_COOLDOWN_MS: '1000'
  })
  t.teardown(gateway.close)
  const loops = Array.from({ length: 6 }, (_, loop) => Array.from({ length: 8 }, (_, i) => `steady-${loop}-${i}`))
  const sessions = loops.flat()
  const traffic = startSteadyTraffic(gateway.baseURL, loops, 'new')
  t.teardown(traffic.stop)

  await traffic.rounds(1)
  const home = new Map(sessions.map((s) => [s, traffic.records.find((r) => r.session === s)!.upstream!]))
  t.same(sessions.filter((s) => home.get(s) !== ranked(s)[0]), [], 'every session starts on its rendezvous choice')
  for (const name of NAMES) t.ok(sessions.some((s) => home.get(s) === name), `sessions on ${name}`)
  const onVictim = sessions.filter((s) => home.get(s) === 'a')

  // Streams flowing from every upstream, and two requests the victim has read but not answered.
  const held = await Promise.all(NAMES.flatMap((name) => sessionsHomedOn(name, NAMES, 2, `held-${name}`)).map(async (s) => await holdStream(gateway, s)))
  const stalledSessions = sessionsHomedOn('a', NAMES, 2, 'stalled')
  const stalled = stalledSessions.map(async (s) => await stalledOn(gateway, 'a', s))
  await victim.received((r) => r.body.includes('"stall_on":"a"'), 2)

  const killMark = traffic.mark()
  await victim.kill()
  for (const stream of held.filter((s) => s.upstream === 'a')) t.equal(await stream.ended, 'torn', 'a stream flowing from the killed upstream is torn')
  for (const [i, answer] of (await Promise.all(stalled)).entries()) {
    t.same(answer, { status: 200, upstream: ranked(stalledSessions[i]!)[1] }, 'a request the victim held unanswered is served by the next upstream')
  }
  await untilState(gateway, 'a', 'ejected')
  await traffic.rounds(1) // every session used while the victim is down

  const restartMark = traffic.mark()
  await victim.restart()
  const firstBack = await traffic.until((r) => r.loop === -1 && r.upstream === 'a' && r.seq >= restartMark)
  await traffic.rounds(1) // every session used again with the victim back
  await traffic.stop()
  for (const stream of held.filter((s) => s.upstream !== 'a')) {
    t.equal(await Promise.race([stream.ended, Promise.resolve('open')]), 'open', `the stream from ${stream.upstream} was never cut`)
    stream.close()
  }

  const records = traffic.records
  const byOutcome = (outcome: TrafficRecord['outcome']): TrafficRecord[] => records.filter((r) => r.outcome === outcome)
  const failedOver = gateway.logs.filter((l) => l.msg === 'request' && Number(l.attempts) > 1 && l.status === 200).length
  t.comment(`${records.length} requests, ${failedOver} served after a failover, ${byOutcome('torn').length} torn`)
  t.same(byOutcome('failed'), [], '0 client-visible failures: what failed before its first byte was served elsewhere')
  t.same(byOutcome('ended-short'), [], 'no answer ended cleanly without its end')
  t.same(byOutcome('torn').filter((r) => r.upstream !== 'a' || r.seq >= killMark), [], 'the only losses are answers already flowing from the killed upstream')
  const loopRecords = records.filter((r) => r.loop >= 0)
  const movedFrom = (s: string): string => home.get(s) === 'a' ? ranked(s)[1]! : home.get(s)!
  t.same(loopRecords.filter((r) => home.get(r.session) !== 'a' && r.upstream !== home.get(r.session)), [], 'sessions on the healthy upstreams never moved')
  t.same(loopRecords.filter((r) => home.get(r.session) === 'a' && r.seq >= killMark && r.upstream !== movedFrom(r.session)), [], "the victim's sessions moved to their next upstream and stayed there, after its return too")
  t.same(records.filter((r) => r.loop === -1 && r.seq > firstBack.seq && r.upstream !== ranked(r.session)[0]), [], 'once back, it takes the new sessions that rendezvous gives it')
  const rebinds = await metricValue(gateway.origin, 'session_gateway_session_rebinds_total{reason="failover"}') +
    await metricValue(gateway.origin, 'session_gateway_session_rebinds_total{reason="unhealthy"}')
  t.equal(rebinds, onVictim.length, 'each of its sessions was rebound once')
  t.equal(await upstreamState(gateway, 'a'), 'healthy')
  t.ok(failedOver >= stalledSessions.length, 'failed-over requests log their attempts')
})
