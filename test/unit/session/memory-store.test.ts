/**
 * The in-memory session store: bounded by estimated bytes and by count (least recently used
 * sessions first out, each as a whole) and by an idle TTL, so a long-running gateway's memory
 * does not grow with every response it sees.
 */
import t from 'tap'
import type { CallRecord } from '../../../src/session/call-record.js'
import { MemorySessionStore } from '../../../src/session/memory-store.js'

function clockedStore (maxEntries: number, idleTtlMs: number, maxBytes = 64 * 1024 * 1024): { store: MemorySessionStore, advance: (ms: number) => void } {
  let now = 1_000_000
  const store = new MemorySessionStore({ maxBytes, maxEntries, idleTtlMs, now: () => now })
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

t.test('a session unused for the idle TTL is forgotten; using any of its bindings renews all of them', async (t) => {
  // The idle TTL is a session's, not a binding's: the session is kept and evicted as a whole.
  const { store, advance } = clockedStore(100, 1_000)
  store.bind(['kept', 'kept-too'], 's1')
  store.bind(['idle'], 's2')
  advance(600)
  t.equal(store.get('kept'), 's1', 'used within the TTL: renewed')
  advance(600)
  t.equal(store.get('idle'), undefined, 'unused for 1,200 ms > 1,000 ms: gone')
  t.equal(store.get('kept-too'), 's1', "its session was used 600 ms ago: still there")
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

t.test('a session idle past the TTL is neither listed, counted in the total, nor answered by usage', async (t) => {
  const { store, advance } = clockedStore(100, 1_000)
  const tokens = { input: 10, cached: 5, output: 1, reasoning: 0 }
  store.recordUsage('idle', tokens, 1)
  advance(600)
  store.recordUsage('used', tokens, 2)
  t.same(await store.recentUsage(10, 0), { sessions: [await store.usage('used'), await store.usage('idle')], total: 2 })
  advance(600)
  t.equal(await store.usage('idle'), undefined, 'unused for 1,200 ms > 1,000 ms: unknown')
  const page = await store.recentUsage(10, 0)
  t.same(page.sessions.map((s) => s.id), ['used'])
  t.equal(page.total, 1, 'the total counts only the session listed')
})

const TOKENS = { input: 10, cached: 5, output: 1, reasoning: 0 }
const longId = (n: number): string => `session-${n}-`.padEnd(256, 'x')

t.test('issue 15: the whole store stays within SESSION_MAX_BYTES while filling with long session ids', async (t) => {
  const maxBytes = 1024 * 1024
  const { store } = clockedStore(1_000_000, 60_000, maxBytes)
  let highest = 0
  for (let n = 0; n < 10_000; n++) {
    store.recordUsage(longId(n), TOKENS, n)
    store.bind([`resp:resp_${n}_${'r'.repeat(48)}`, `pck:key-${n}`], longId(n))
    highest = Math.max(highest, store.bytes())
  }
  t.ok(highest <= maxBytes, `the estimate never went over the bound (highest ${highest})`)
  t.ok(store.bytes() > maxBytes * 0.9, `and the budget is used (${store.bytes()} bytes)`)
  t.ok(store.sessionCount() < 10_000 && store.sessionCount() > 100, `${store.sessionCount()} sessions held`)
  t.equal(store.size(), 2 * store.sessionCount(), 'every held session has both its bindings')
  t.equal(store.get('pck:key-9999'), longId(9_999), 'the newest session is held')
  t.equal(store.get('pck:key-0'), undefined, 'the oldest is gone')
})

t.test('issue 15: an evicted session takes all its bindings and its usage with it; recently used sessions survive', async (t) => {
  const { store } = clockedStore(1_000_000, 60_000, 256 * 1024)
  store.bind(['resp:old-1', 'conv:old'], 'old')
  store.recordUsage('old', TOKENS, 1)
  store.bind(['resp:hot-1', 'conv:hot'], 'hot')
  store.recordUsage('hot', TOKENS, 1)
  let n = 0
  // Reading usage does not count as a use; a lookup would (and would keep the session alive).
  while (await store.usage('old') !== undefined) {
    store.get('resp:hot-1') // the hot session is used between every newcomer
    store.bind([`resp:filler-${n}`], longId(n))
    store.recordUsage(longId(n), TOKENS, n)
    n++
    if (n > 100_000) throw new Error('the old session was never evicted')
  }
  t.same(await store.lookup(['resp:old-1', 'conv:old']), [undefined, undefined], "all of the old session's bindings went")
  t.equal(await store.usage('old'), undefined, 'and its usage with them')
  t.notOk((await store.recentUsage(1_000, 0)).sessions.some((s) => s.id === 'old'), 'it is not listed either')
  t.same(await store.lookup(['resp:hot-1', 'conv:hot']), ['hot', 'hot'], 'the recently used session survived whole')
  t.match(await store.usage('hot'), { requests: 1 })
})

t.test('issue 15: one session holds at most a quarter of the budget, giving up its least recently used keys', async (t) => {
  const maxBytes = 256 * 1024
  const { store } = clockedStore(1_000_000, 60_000, maxBytes)
  store.bind(['conv:other'], 'other')
  store.bind(['conv:endless'], 'endless')
  for (let n = 0; n < 5_000; n++) {
    store.bind([`resp:turn-${n}`], 'endless')
    store.get('conv:endless') // in use all along
  }
  t.ok(store.bytes() <= maxBytes / 4 + 2_000, `the endless session stays near its share (${store.bytes()} bytes in all)`)
  t.equal(store.get('conv:other'), 'other', 'and did not evict another session')
  t.equal(store.get('conv:endless'), 'endless', 'its recently used keys are kept')
  t.equal(store.get('resp:turn-4999'), 'endless')
  t.equal(store.get('resp:turn-0'), undefined, 'its oldest are not')
})

t.test('the byte count follows what is held: unbinding or forgetting gives the bytes back', async (t) => {
  const { store, advance } = clockedStore(1_000, 1_000)
  store.bind(['a'], 's')
  const one = store.bytes()
  store.bind(['b'], 's')
  t.ok(store.bytes() > one)
  store.unbind('b', 's')
  t.equal(store.bytes(), one, 'unbinding gives back what binding took')
  store.bind(['c'], 's') // the session is used: binding again for it is its own
  store.unbind('c', 'not-its-session')
  t.equal(store.get('c'), 's', 'only the owning session can be unbound')
  advance(2_000)
  t.equal(store.get('a'), undefined)
  t.equal(store.bytes(), 0, 'an expired session gives back everything')
  t.equal(store.sessionCount(), 0)
})

t.test('the upstream that produced a response is kept with its binding: counted in the bytes, gone with it', async (t) => {
  const { store, advance } = clockedStore(1_000, 1_000)
  store.bindProduced('resp:r0', 's')
  const before = store.bytes()
  store.bindProduced('resp:r1', 's')
  const bound = store.bytes()
  t.equal(store.originOf('resp:r1'), undefined, 'none until told')
  store.bindOrigin('resp:r1', 'up-a')
  t.equal(store.originOf('resp:r1'), 'up-a')
  t.ok(store.bytes() > bound, 'counted')
  store.bindOrigin('resp:r1', 'up-a')
  const once = store.bytes()
  store.bindOrigin('resp:unbound', 'up-a')
  t.equal(store.originOf('resp:unbound'), undefined, 'no binding, nothing kept')
  t.equal(store.bytes(), once, 'told twice, or about an unbound key: counted once')
  store.unbind('resp:r1', 's')
  t.equal(store.originOf('resp:r1'), undefined, 'unbound: gone')
  t.equal(store.bytes(), before, 'its bytes given back with the binding')
  store.bindProduced('resp:r2', 's')
  store.bindOrigin('resp:r2', 'up-b')
  advance(2_000)
  t.equal(store.originOf('resp:r2'), undefined, 'expired with its session')
  t.equal(store.bytes(), 0)
})

t.test("issue 15: the Redis store's local copy holds to the same byte bound", async (t) => {
  const { RedisSessionStore } = await import('../../../src/session/redis-store.js')
  const { createLogger } = await import('../../../src/observe/logger.js')
  const { loadConfig } = await import('../../../src/config/load-config.js')
  // Nothing listens on port 1: every binding stays local, as during an outage.
  const store = new RedisSessionStore({ target: loadConfig({ env: { REDIS_URL: 'redis://127.0.0.1:1' } }).redis, replayMaxEntries: 0, timeoutMs: 100, idleTtlMs: 60_000, keyPrefix: 't:', localMaxEntries: 1_000_000, localMaxBytes: 256 * 1024, logger: createLogger('silent') })
  t.teardown(async () => { await store.close() })
  for (let n = 0; n < 5_000; n++) store.bind([`resp:resp_${n}`], longId(n))
  t.ok(store.size() < 5_000 && store.size() > 50, `the local copy holds ${store.size()} of 5,000 bindings`)
  t.same(await store.lookup(['resp:resp_4999', 'resp:resp_0']), [longId(4_999), undefined], 'the newest, not the oldest')
})

t.test('call records: newest first, capped per session, counted in the byte budget, gone with the session', async (t) => {
  let now = 1_000
  const store = new MemorySessionStore({ maxBytes: 1024 * 1024, maxEntries: 1000, idleTtlMs: 60_000, recordsPerSession: 3, now: () => now })
  const record = (i: number, previous: CallRecord | undefined): CallRecord => ({ time: i, model: 'gpt-5', upstream: 'default', status: 200, ttfbMs: 1, durationMs: 2, input: i, cached: 0, output: 0, reasoning: 0, cache: 'n/a', missReason: null, fingerprint: previous === undefined ? 'first' : 'next' })
  const seen: Array<CallRecord | undefined> = []
  const before = store.bytes()
  for (let i = 1; i <= 5; i++) await store.recordCall('s', (previous) => { seen.push(previous); return record(i, previous) })
  t.same(seen.map((p) => p?.time), [undefined, 1, 2, 3, 4], 'each call is built from the previous one')
  t.same((await store.calls('s'))!.map((r) => r.time), [5, 4, 3])
  const held = store.bytes() - before
  t.ok(held > 3 * 320 && held < 3 * 320 + 1000, `three records and one session counted (${held} bytes)`)
  t.equal(await store.calls('unknown'), undefined)
  now += 60_001
  t.equal(await store.calls('s'), undefined, 'expired with the session')
})

t.test('a session over its share of the bytes gives up its oldest records first', async (t) => {
  const store = new MemorySessionStore({ maxBytes: 64 * 1024, maxEntries: 1000, idleTtlMs: 60_000, recordsPerSession: 10_000 })
  const record: CallRecord = { time: 1, model: 'x'.repeat(100), upstream: 'default', status: 200, ttfbMs: 1, durationMs: 2, input: 0, cached: 0, output: 0, reasoning: 0, cache: 'n/a', missReason: null, fingerprint: null }
  for (let i = 0; i < 1000; i++) await store.recordCall('greedy', () => ({ ...record, time: i }))
  t.ok(store.bytes() <= 64 * 1024 / 4, `held ${store.bytes()} bytes`)
  const kept = (await store.calls('greedy'))!
  t.equal(kept[0]!.time, 999, 'the newest is kept')
  t.ok(kept.length > 10 && kept.length < 1000)
})
