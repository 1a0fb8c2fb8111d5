/**
 * The README's Operations section names every metric family /metrics renders, and no other:
 * the table's `session_gateway_*` families and the process's own (`…_` stands for the prefix,
 * `{a,b}` for each spelling).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { GatewayMetrics } from '../../../src/observe/metrics.js'

const PREFIX = 'session_gateway_'

/** `a_{b,c}_d` → `a_b_d`, `a_c_d`. */
function expand (name: string): string[] {
  const brace = /\{([^}]*)\}/.exec(name)
  if (brace === null) return [name]
  return brace[1]!.split(',').flatMap((part) => expand(name.slice(0, brace.index) + part + name.slice(brace.index + brace[0].length)))
}

function documentedFamilies (): Set<string> {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8')
  const operations = readme.slice(readme.indexOf('## Operations'), readme.indexOf('**Per-session usage.**'))
  const names = [...operations.matchAll(/`(?:session_gateway_|…_)([a-z0-9_{},]+)`/g)].flatMap((match) => expand(PREFIX + match[1]!))
  return new Set(names)
}

function renderedFamilies (page: string): Set<string> {
  return new Set(page.split('\n').filter((line) => line.startsWith('# TYPE ')).map((line) => line.split(' ')[2]!))
}

t.test("the README's Operations section names each family /metrics renders, and no other", async (t) => {
  const { body } = await new GatewayMetrics(() => 0).render()
  const rendered = renderedFamilies(body)
  const documented = documentedFamilies()
  // Open file descriptors are read from /proc/self/fd: the family exists on Linux only.
  if (process.platform !== 'linux') documented.delete(`${PREFIX}process_open_fds`)
  t.ok(rendered.size > 0, 'families were rendered')
  t.same([...rendered].filter((name) => !documented.has(name)), [], 'rendered but not in the README')
  t.same([...documented].filter((name) => !rendered.has(name)), [], 'in the README but not rendered')
})
