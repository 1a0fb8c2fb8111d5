/**
 * The benchmark still measures what it claims: `node bench/run.mjs --smoke` runs one tiny round
 * of every scenario, checks every proxy relayed the upstream's exact bytes with 200s, and exits
 * non-zero otherwise. Once with whatever of nginx and wrk this machine has, once as if it had
 * neither (Node upstream, in-process load generator, nginx anchor skipped) and without pinning
 * processes to CPUs, so every path stays working wherever the tests run. The two runs go at the
 * same time: each waits mostly on its own processes starting, and they share no port (the
 * bench's processes listen on port 0; nginx checks the port it was given is its own).
 * `npm test` builds dist/ first, which the gateway runs from.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { envWithoutTapHooks } from '../support/child-env.js'

const ROOT = join(import.meta.dirname, '..', '..')
const RUN = join(ROOT, 'bench', 'run.mjs')
const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const PROXY_NAMES = ['nginx', 'node:http + undici', 'fastify + @fastify/http-proxy', 'session-gateway']

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" (npm test does) first`)

// Each smoke run starts ~25 processes; on a busy machine that is slow, never stuck.
t.setTimeout(300_000)

interface SmokeRun {
  code: number | null
  stdout: string
  stderr: string
  /** The report file the run wrote. */
  report: string
}

async function runSmoke (extraArgs: string[]): Promise<SmokeRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  const out = join(dir, 'smoke.md')
  try {
    const child = spawn(process.execPath, [RUN, '--smoke', '--out', out, ...extraArgs], { cwd: ROOT, env: envWithoutTapHooks(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    return { code, stdout, stderr, report: existsSync(out) ? readFileSync(out, 'utf8') : '' }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// Both started now, each awaited by its test.
const withTools = runSmoke([])
const withoutTools = runSmoke(['--without', 'nginx,wrk', '--no-pin'])

t.test('smoke run: every proxy answers correctly and the report names all four', async (t) => {
  const run = await withTools
  t.equal(run.code, 0, `exit code; stderr:\n${run.stderr}`)
  for (const name of PROXY_NAMES) t.ok(run.stdout.includes(`| ${name} |`), `report names ${name}`)
  t.equal(run.report, run.stdout, 'the report file holds what was printed')
  t.match(run.stdout, /## Targets/)
})

t.test('without nginx and wrk it falls back to Node and says the nginx anchor was skipped', async (t) => {
  const run = await withoutTools
  t.equal(run.code, 0, `exit code; stderr:\n${run.stderr}`)
  for (const name of PROXY_NAMES) t.ok(run.stdout.includes(`| ${name} |`), `report names ${name}`)
  t.match(run.stdout, /\| nginx \| _skipped \(--without nginx\)_/, 'the nginx row says why it is empty')
  t.match(run.stdout, /load from undici \(in-process\)/, 'the in-process load generator was used')
  t.match(run.stdout, /reply from the Node upstream/, 'the Node upstream served the short stream')
  t.match(run.stdout, /Processes not pinned to CPUs \(--no-pin\)/, 'the unpinned placement ran and says so')
})
