/**
 * Where a process spent its CPU, from a V8 `.cpuprofile` (`node --cpu-prof`): self time per
 * function and per area (the gateway's own code, fastify, undici, pino, Node's internals, GC).
 *
 *   node bench/report/cpu-profile.mjs FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

/**
 * `{ totalMs, idleMs, functions: [{ name, where, selfMs, share }], areas: [{ area, selfMs, share }] }`.
 * Shares are of busy time (everything but `(idle)`): the process also sat idle while the other
 * proxies had their turn.
 */
export function summarizeCpuProfile (file, top = 20) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map()
  // timeDeltas[i] is the time before sample i; the time sample i stands for is the next delta.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
  }
  const functions = new Map()
  const areas = new Map()
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const name = functionName === '' ? '(anonymous)' : functionName
    const where = url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`
    const key = `${name} ${where}`
    const entry = functions.get(key) ?? { name, where, selfUs: 0 }
    entry.selfUs += us
    functions.set(key, entry)
    const area = areaOf(name, url)
    areas.set(area, (areas.get(area) ?? 0) + us)
    totalUs += us
  }
  const idleUs = areas.get('idle') ?? 0
  areas.delete('idle')
  const busyUs = totalUs - idleUs
  const share = (us) => busyUs === 0 ? 0 : us / busyUs
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: [...functions.values()].filter((f) => f.name !== '(idle)').sort((a, b) => b.selfUs - a.selfUs).slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.selfUs / 1000, share: share(f.selfUs) })),
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, selfMs: us / 1000, share: share(us) }))
  }
}

function shortUrl (url) {
  const modules = url.lastIndexOf('/node_modules/')
  if (modules !== -1) return url.slice(modules + '/node_modules/'.length)
  const dist = url.indexOf('/dist/')
  if (dist !== -1) return url.slice(dist + 1)
  return url.replace(/^file:\/\//, '')
}

function areaOf (name, url) {
  if (name === '(idle)') return 'idle'
  if (name === '(garbage collector)') return 'garbage collector'
  if (name === '(program)' || name === '(root)') return 'V8 / native (program)'
  if (url.includes('/dist/src/')) return 'session-gateway'
  const modules = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (modules !== null) return modules[1]
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/')[0]}`
  return url === '' ? 'native' : 'other'
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [file, top] = process.argv.slice(2)
  if (file === undefined) {
    process.stderr.write('Usage: node bench/report/cpu-profile.mjs FILE.cpuprofile [TOP]\n')
    process.exit(2)
  }
  const summary = summarizeCpuProfile(file, Number(top ?? 25))
  process.stdout.write(`${summary.totalMs.toFixed(0)} ms sampled, ${(summary.totalMs - summary.idleMs).toFixed(0)} ms busy; shares are of busy time\n\nBy area:\n`)
  for (const a of summary.areas) process.stdout.write(`  ${(a.share * 100).toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(7)} ms  ${a.area}\n`)
  process.stdout.write('\nTop functions by self time:\n')
  for (const f of summary.functions) process.stdout.write(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}\n`)
}
