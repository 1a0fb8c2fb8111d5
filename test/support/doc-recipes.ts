/**
 * The routing recipes of docs/routing.md, read out of the page itself so a test of a recipe
 * is a test of what the page shows, and loaded into a gateway as written, with only their
 * upstreams' hosts pointed at mock upstreams on loopback.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway, type RunningGateway, type Teardown } from './gateway.js'
import { startMockUpstream, type MockUpstream, type UpstreamHandler } from './mock-upstream.js'

const PAGE = join(import.meta.dirname, '..', '..', 'docs', 'routing.md')

/** Every ```yaml block of the page's "## Recipes" section, under the bold title of the paragraph that introduces it. */
export function routingRecipes (): Map<string, string> {
  const page = readFileSync(PAGE, 'utf8')
  const start = page.indexOf('\n## Recipes')
  const end = page.indexOf('\n## ', start + 1)
  const section = page.slice(start, end === -1 ? undefined : end)
  const recipes = new Map<string, string>()
  let after = 0
  for (const block of section.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const before = section.slice(after, block.index)
    const title = [...before.matchAll(/^\*\*(.+?)\*\*/gm)].at(-1)?.[1]
    if (title === undefined) throw new Error(`a yaml block of docs/routing.md's recipes has no bold title before it:\n${block[1]!}`)
    recipes.set(title, block[1]!)
    after = block.index + block[0].length
  }
  return recipes
}

/** The recipe whose title starts with `title`; throws when the page has none (the test must not pass silently). */
export function routingRecipe (title: string): string {
  for (const [name, yaml] of routingRecipes()) if (name.startsWith(title)) return yaml
  throw new Error(`docs/routing.md has no recipe titled "${title}…"`)
}

/** The environment variables a recipe names with `api_key_env`, each set to `key-of-<VARIABLE>`. */
export function recipeKeys (yaml: string): Record<string, string> {
  return Object.fromEntries([...yaml.matchAll(/api_key_env: ([A-Z0-9_]+)/g)].map(([, name]) => [name!, `key-of-${name!}`]))
}

export interface RecipeGateway {
  gateway: RunningGateway
  /** A mock upstream for each host the recipe names (`east.openai.azure.com`, …). */
  upstreams: Map<string, MockUpstream>
  /** The YAML file the gateway was started with. */
  yaml: string
}

/**
 * Starts a mock upstream for every distinct origin in the recipe's `url:`s, writes the recipe
 * with those origins replaced (paths and queries untouched) to a file, and starts a gateway
 * from it (`--config`), with `env` beside it. All closed at teardown.
 */
export async function gatewayFromRecipe (t: Teardown, recipe: string, env: Record<string, string>, handler: (host: string) => UpstreamHandler): Promise<RecipeGateway> {
  const origins = [...new Set([...recipe.matchAll(/url: (https?:\/\/[^/\s,}]+)/g)].map(([, origin]) => origin!))]
  const upstreams = new Map<string, MockUpstream>()
  let yaml = recipe
  for (const origin of origins) {
    const host = new URL(origin).host
    const upstream = await startMockUpstream(handler(host))
    t.teardown(upstream.close)
    upstreams.set(host, upstream)
    yaml = yaml.replaceAll(`url: ${origin}/`, `url: ${upstream.origin}/`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'recipe-'))
  t.teardown(async () => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, yaml)
  const gateway = await startGateway(env, file)
  t.teardown(async () => { await gateway.close() })
  return { gateway, upstreams, yaml }
}
