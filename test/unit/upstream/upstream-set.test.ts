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
