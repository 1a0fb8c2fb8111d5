/**
 * The in-memory session store: bounded by count (least recently used first out) and by an
 * idle TTL, so a long-running gateway's memory does not grow with every response it sees.
 */
import t from 'tap'
import { MemorySessionStore } from '../../../src/session/memory-store.js'

function clockedStore (maxEntries: number, idleTtlMs: number): { store: MemorySessionStore, advance: (ms: number) => void } {
  let now = 1_000_000
  const store = new MemorySessionStore({ maxEntries, idleTtlMs, now: () => now })
  return { store, advance: (ms) => { now += ms } }
}

t.test('past max entries, the least recently used binding is forgotten first', async (t) => {
  const { store } = clockedStore(3, 60_000)
  store.bind(['a'], 's1')
  store.bind(['b'], 's2')
  store.bind(['c'], 's3')
  t.equal(store.get('a'), 's1', 'reading a makes it the most recently used')
  store.bind(['d'], 's4')
  t.equal(store.size(), 3)
  t.equal(store.get('b'), undefined, 'b, now the least recently used, went first')
  t.same(await store.lookup(['a', 'c', 'd']), ['s1', 's3', 's4'])
})

t.test('a binding unused for the idle TTL is forgotten; using it renews it', async (t) => {
  const { store, advance } = clockedStore(100, 1_000)
  store.bind(['kept', 'idle'], 's')
  advance(600)
  t.equal(store.get('kept'), 's', 'used within the TTL: renewed')
  advance(600)
  t.equal(store.get('idle'), undefined, 'unused for 1,200 ms > 1,000 ms: gone')
  t.equal(store.get('kept'), 's', 'renewed 600 ms ago: still there')
})

t.test('expired bindings are swept even if never read again, so the size stays bounded by use', async (t) => {
  const { store, advance } = clockedStore(100_000, 1_000)
  for (let i = 0; i < 1_000; i++) store.bind([`old-${i}`], 's-old')
  advance(2_000)
  for (let i = 0; i < 300; i++) store.bind([`new-${i}`], 's-new')
  t.ok(store.size() <= 300 + 256, `expired entries were swept (size ${store.size()})`)
  t.equal(store.get('new-0'), 's-new')
})

t.test('usage totals are bounded by max entries too, the least recently active first out', async (t) => {
  const { store } = clockedStore(2, 60_000)
  const tokens = { input: 10, cached: 5, output: 1, reasoning: 0 }
  store.recordUsage('one', tokens, 1)
  store.recordUsage('two', tokens, 2)
  store.recordUsage('one', tokens, 3)
  store.recordUsage('three', tokens, 4)
  t.equal(await store.usage('two'), undefined, 'two was the least recently active')
  t.match(await store.usage('one'), { requests: 2, input_tokens: 20, cached_tokens: 10, cache_hit_ratio: 0.5 })
  t.same((await store.recentUsage(10, 0)).sessions.map((s) => s.id), ['three', 'one'])
})
