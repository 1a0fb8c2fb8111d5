/**
 * The README's Layout lists src/ in the order a request's code depends on it, and promises that
 * imports point down that list, never up: checked here against every import in src/.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..', '..')
const src = join(root, 'src')

/** The top-level entries of src/ (a folder, or a file of its own) in the README's Layout block. */
function layoutOrder (): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Layout'))
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  return [...block.matchAll(/^src\/([\w.-]+)/gm)].map((match) => match[1]!)
}

/** `folder` of a path under src/, or the file's own name for a file at src/'s top. */
function topOf (path: string): string {
  return relative(src, path).split('/')[0]!.replace(/\.js$/, '.ts')
}

/** Imports that exist at run time: `import type` and `import { type A, type B }` are erased. */
function runtimeImports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const [, typeOnly, names, from] of text.matchAll(/^(?:import|export)\s+(type\s+)?([^'"]*?)\s*from\s+'(\.[^']+)'/gm)) {
    const allTypes = /^\{[^}]*\}$/.test(names!.trim()) && names!.replace(/[{}\s]/g, '').split(',').filter((n) => n !== '').every((n) => n.startsWith('type'))
    if (typeOnly === undefined && !allTypes) out.push(resolve(dirname(file), from!))
  }
  return out
}

t.test("every top-level part of src/ is in the README's Layout", async (t) => {
  const listed = layoutOrder()
  const present = readdirSync(src).filter((name) => !name.startsWith('.'))
  t.same(present.filter((name) => !listed.includes(name)), [], 'in src/ but not in the Layout')
  t.same(listed.filter((name) => !present.includes(name)), [], 'in the Layout but not in src/')
})

t.test("run-time imports point down the README's Layout list, never up", async (t) => {
  const order = layoutOrder()
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts')).map((name) => join(src, name))
  const upward: string[] = []
  let across = 0
  for (const file of files) {
    const from = topOf(file)
    for (const target of runtimeImports(file)) {
      const to = topOf(target)
      if (to === from) continue
      across++
      if (order.indexOf(to) < order.indexOf(from)) upward.push(`${relative(src, file)} imports ${relative(src, target)}`)
    }
  }
  t.ok(across > 0, 'imports between parts of src/ were found (the scan reads them)')
  t.same(upward, [], 'none points up')
})
