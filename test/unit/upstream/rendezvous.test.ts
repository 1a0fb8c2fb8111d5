import t from 'tap'
import { rendezvousOrder } from '../../../src/upstream/rendezvous.js'

const ids = (n: number, prefix = 's'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}-${(i * 2654435761 >>> 0).toString(36)}`)

t.test('the same session always gets the same order, whatever order the upstreams are listed in', async (t) => {
  const ups = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }]
  for (const id of ids(200)) {
    const first = rendezvousOrder(id, ups).map((u) => u.name)
    t.strictSame(rendezvousOrder(id, [...ups].reverse()).map((u) => u.name), first)
  }
})

t.test('sessions spread by weight: 10,000 sessions over weights 1, 2, 1 within 3 percentage points', async (t) => {
  const ups = [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }, { name: 'c', weight: 1 }]
  const counts = new Map<string, number>()
  const sessions = ids(10_000)
  for (const id of sessions) {
    const top = rendezvousOrder(id, ups)[0]!.name
    counts.set(top, (counts.get(top) ?? 0) + 1)
  }
  for (const [name, share] of [['a', 0.25], ['b', 0.5], ['c', 0.25]] as const) {
    const got = (counts.get(name) ?? 0) / sessions.length
    t.ok(Math.abs(got - share) < 0.03, `${name}: ${got.toFixed(3)} of sessions, expected ${share}`)
  }
})

t.test('adding an upstream moves sessions only to it; removing one moves only its own', async (t) => {
  const three = [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }]
  const four = [...three, { name: 'd', weight: 1 }]
  const two = three.filter((u) => u.name !== 'b')
  let movedToD = 0
  for (const id of ids(3000)) {
    const before = rendezvousOrder(id, three)[0]!.name
    const added = rendezvousOrder(id, four)[0]!.name
    if (added !== before) {
      t.equal(added, 'd', 'a session that moves when d is added moves to d')
      movedToD++
    }
    const removed = rendezvousOrder(id, two)[0]!.name
    if (before !== 'b') t.equal(removed, before, 'a session not on b stays where it was when b goes')
  }
  t.ok(movedToD > 500 && movedToD < 1000, `about a quarter moved to d (${movedToD} of 3000)`)
})
