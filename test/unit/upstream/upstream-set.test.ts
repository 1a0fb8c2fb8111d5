import t from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { UpstreamSet } from '../../../src/upstream/upstream-set.js'

function upstreams (list: Array<Record<string, unknown>>): UpstreamSet {
  return new UpstreamSet(loadConfig({ env: { HOST: '127.0.0.1', UPSTREAMS: JSON.stringify(list) } }))
}

const eject = (set: UpstreamSet, name: string): void => { for (let i = 0; i < 3; i++) set.get(name)!.health.recordFailure() }
const names = (plan: ReturnType<UpstreamSet['plan']>): string[] | string => plan.refusal?.code ?? plan.order!.map((u) => u.name)

t.test('a bound upstream comes first while healthy; then its group; then (without lineage) the rest', async (t) => {
  const set = upstreams([
    { name: 'a1', url: 'http://127.0.0.1:1', group: 'a' }, { name: 'a2', url: 'http://127.0.0.1:2', group: 'a' },
    { name: 'b1', url: 'http://127.0.0.1:3', group: 'b' }
  ])
  const plan = set.plan('s-1', 'a2', false)
  t.strictSame(names(plan), ['a2', 'a1', 'b1'])
  t.equal(plan.rebindReason, undefined)
  t.strictSame(names(set.plan('s-1', 'a2', true)), ['a2', 'a1'], 'lineage stays in its group')
  eject(set, 'a2')
  const moved = set.plan('s-1', 'a2', true)
  t.strictSame(names(moved), ['a1'])
  t.equal(moved.rebindReason, 'unhealthy')
  eject(set, 'a1')
  t.equal(names(set.plan('s-1', 'a2', true)), 'upstream_unavailable', 'lineage with its group down: refused')
  t.strictSame(names(set.plan('s-1', 'a2', false)), ['b1'], 'without lineage: another group')
  t.equal(set.plan('s-1', 'gone', false).rebindReason, 'removed')
})

t.test('at most max attempts upstreams; with all ejected, all are still tried without lineage', async (t) => {
  const set = upstreams([1, 2, 3, 4].map((i) => ({ name: `u${i}`, url: `http://127.0.0.1:${i}` })))
  t.equal(set.plan('x', undefined, false).order!.length, 3, 'UPSTREAM_MAX_ATTEMPTS default 3')
  for (const u of set.all) eject(set, u.name)
  t.equal(set.plan('x', undefined, false).order!.length, 3)
})

t.test("a response produced in another group than the session's binding's: that group is home, and the session moves back with it", async (t) => {
  const set = upstreams([
    { name: 'a1', url: 'http://127.0.0.1:1', group: 'a' }, { name: 'a2', url: 'http://127.0.0.1:2', group: 'a' },
    { name: 'b1', url: 'http://127.0.0.1:3', group: 'b' }
  ])
  t.ok(set.spansGroups)
  t.ok(set.hasGroup('b'))
  t.notOk(set.hasGroup('gone'), 'a group no longer configured')
  const sorted = (plan: ReturnType<UpstreamSet['plan']>): string[] | string => { const n = names(plan); return typeof n === 'string' ? n : [...n].sort() }
  // The session failed over to b1 after group a had produced the response it continues.
  const back = set.plan('s-1', 'b1', true, 'a')
  t.strictSame(sorted(back), ['a1', 'a2'], 'its group only; never b1, where it does not exist')
  t.equal(back.rebindReason, 'lineage')
  t.strictSame(names(set.plan('s-1', 'a2', true, 'a')), ['a2', 'a1'], 'in the same group the binding still leads')
  t.equal(set.plan('s-1', 'a2', true, 'a').rebindReason, undefined)
  t.strictSame(names(set.plan('s-1', undefined, true, 'b')), ['b1'], 'no binding: its group, not the rendezvous guess')
  t.strictSame(names(set.plan('s-1', 'b1', true, 'gone')), ['b1'], 'a group no longer configured: the binding decides, as before')
  t.equal(set.plan('s-1', 'removed', true, 'a').rebindReason, 'removed', 'a binding gone from the config says so')
  eject(set, 'a1')
  const sibling = set.plan('s-1', 'b1', true, 'a')
  t.strictSame(names(sibling), ['a2'], 'one of its group ejected: the rest of it')
  t.equal(sibling.rebindReason, 'lineage')
  eject(set, 'a2')
  const refused = set.plan('s-1', 'b1', true, 'a')
  t.equal(names(refused), 'upstream_unavailable', "its group down: refused, not sent to the session's binding")
  t.match(refused.refusal?.message, /group "a"/)
  t.notOk(upstreams([{ name: 'x', url: 'http://127.0.0.1:1', group: 'g' }, { name: 'y', url: 'http://127.0.0.1:2', group: 'g' }]).spansGroups, 'one group: no origins needed')
})
