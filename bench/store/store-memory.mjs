/**
 * How much memory the in-memory session store costs, and how many sessions fit in its byte
 * budget. Each scenario runs in its own child process (node --expose-gc) so RSS and heap
 * growth belong to it alone. Run: `npm run bench:store` (builds first).
 *
 *   lineage     100,000 response ids, chains of 4 per session (UUIDv7 sessions)
 *   long-ids    100,000 calls each with its own 200-char session-id header (usage + its
 *               response id), plus 100,000 calls chained by prompt_cache_key (key + response id)
 *   150k-long   150,000 sessions with 256-char ids (usage + one response id)
 *
 * For each: once with no bound (what the data really costs, against the store's own estimate),
 * once with the default 64 MiB budget (what it holds then, and what the process grows by), and
 * once against a store that keeps nothing: the RSS that generating the calls costs by itself
 * (V8's young generation and freed pages it keeps), to subtract from the others.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { v5 as uuidv5, v7 as uuidv7 } from 'uuid'

const ROOT = join(import.meta.dirname, '..', '..')
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
const UNBOUNDED = 2 ** 40
const NAMESPACE = '6f1c2b1e-4f43-4d0a-9d43-2b5b8f0e7a10'
const TOKENS = { input: 1200, cached: 800, output: 90, reasoning: 30 }

const responseId = () => `resp_${randomBytes(24).toString('hex')}` // the shape OpenAI uses: 53 chars
const longId = (length) => randomBytes(length).toString('base64url').slice(0, length)

/** Each fills `store` the way the gateway would, through its public methods. */
const SCENARIOS = {
  lineage (store) {
    for (let s = 0; s < 25_000; s++) {
      const session = uuidv7()
      for (let turn = 0; turn < 4; turn++) store.bind([`resp:${responseId()}`], session)
    }
  },
  'long-ids' (store) {
    for (let i = 0; i < 100_000; i++) {
      const session = longId(200)
      store.recordUsage(session, TOKENS, Date.now())
      store.bind([`resp:${responseId()}`], session)
    }
    for (let i = 0; i < 100_000; i++) {
      const key = `pck:tenant-${i}-${randomBytes(8).toString('hex')}`
      const session = uuidv5(key, NAMESPACE)
      store.bind([key], session)
      store.bind([`resp:${responseId()}`], session)
      store.recordUsage(session, TOKENS, Date.now())
    }
  },
  '150k-long' (store) {
    for (let i = 0; i < 150_000; i++) {
      const session = longId(256)
      store.recordUsage(session, TOKENS, Date.now())
      store.bind([`resp:${responseId()}`], session)
    }
  }
}

const NOTHING_KEPT = { bind () {}, recordUsage () {}, sessionCount: () => 0, size: () => 0, bytes: () => 0 }

async function measure (scenario, maxBytes) {
  const { MemorySessionStore } = await import(join(ROOT, 'dist', 'src', 'session', 'memory-store.js'))
  const settle = () => { for (let i = 0; i < 3; i++) globalThis.gc() }
  settle()
  const before = process.memoryUsage()
  // Budget 0: the same fill against a store that keeps nothing, for the RSS the fill itself costs.
  const store = maxBytes === 0 ? NOTHING_KEPT : new MemorySessionStore({ maxBytes, maxEntries: 1e9, idleTtlMs: 24 * 3600_000 })
  SCENARIOS[scenario](store)
  settle()
  const after = process.memoryUsage()
  return {
    scenario,
    budget: maxBytes === UNBOUNDED ? 'none' : maxBytes === 0 ? 'no store (the fill alone)' : `${maxBytes / 1024 / 1024} MiB`,
    sessions: store.sessionCount(),
    bindings: store.size(),
    estimatedMB: store.bytes() / 1e6,
    heapMB: (after.heapUsed - before.heapUsed) / 1e6,
    rssMB: (after.rss - before.rss) / 1e6
  }
}

function table (rows) {
  const mb = (n) => n.toFixed(1)
  const lines = [
    '| scenario | budget | sessions held | bindings held | store estimate MB | heap growth MB | RSS growth MB | heap / estimate |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const r of rows) {
    lines.push(`| ${r.scenario} | ${r.budget} | ${r.sessions.toLocaleString('en')} | ${r.bindings.toLocaleString('en')} | ${mb(r.estimatedMB)} | ${mb(r.heapMB)} | ${mb(r.rssMB)} | ${r.estimatedMB === 0 ? '–' : (r.heapMB / r.estimatedMB).toFixed(2)} |`)
  }
  return lines.join('\n')
}

const [scenario, maxBytes] = process.argv.slice(2)
if (scenario !== undefined) {
  process.stdout.write(JSON.stringify(await measure(scenario, Number(maxBytes))))
} else {
  const rows = []
  for (const name of Object.keys(SCENARIOS)) {
    for (const budget of [0, UNBOUNDED, DEFAULT_MAX_BYTES]) {
      const out = execFileSync(process.execPath, ['--expose-gc', import.meta.filename, name, String(budget)], { encoding: 'utf8' })
      rows.push(JSON.parse(out))
    }
  }
  console.log(`Node ${process.version}, ${process.arch}; heap / estimate below 1 means the estimate is conservative.\n`)
  console.log(table(rows))
}
