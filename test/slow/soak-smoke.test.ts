/**
 * The soak still runs and still judges: `node soak/run.mjs --smoke` drives a few seconds of
 * every kind of traffic through the built gateway, checks every byte, samples the process and
 * exits 0 with a report of the expected shape; and the same run against an upstream that
 * damages a byte (while announcing the intended bytes' hash) exits 1. `npm test` builds
 * dist/ first, which the gateway runs from.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { envWithoutTapHooks } from '../support/child-env.js'

const ROOT = join(import.meta.dirname, '..', '..')
const RUN = join(ROOT, 'soak', 'run.mjs')
const CLI = join(ROOT, 'dist', 'src', 'cli.js')

/** The samples table's header row, as soak/lib/report.mjs writes it. */
const SAMPLE_COLUMNS = ['t (s)', 'phase', 'RSS MB', 'heap MB', 'fds', 'handles', 'active streams', 'sessions', 'series', 'lag p99 ms', 'lag max ms', 'CPU %', 'done/s', 'in flight', 'errors']

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" (npm test does) first`)

// Two short runs of three processes each; slow on a busy machine, never stuck.
t.setTimeout(180_000)

interface SoakRun {
  code: number | null
  stdout: string
  stderr: string
  report: string
  json: { verdict: { pass: boolean, failed: string[] }, samples: Array<Record<string, unknown>> } | undefined
  svg: string
}

async function runSoak (args: string[]): Promise<SoakRun> {
  const dir = mkdtempSync(join(tmpdir(), 'soak-smoke-'))
  const out = join(dir, 'smoke.md')
  try {
    const child = spawn(process.execPath, [RUN, '--smoke', '--out', out, ...args], { cwd: ROOT, env: envWithoutTapHooks(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    const read = (file: string): string => existsSync(file) ? readFileSync(file, 'utf8') : ''
    const json = read(join(dir, 'smoke.json'))
    return { code, stdout, stderr, report: read(out), json: json === '' ? undefined : JSON.parse(json), svg: read(join(dir, 'smoke.svg')) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('smoke soak: every kind of exchange passes and the report has its columns', async (t) => {
  const run = await runSoak([])
  t.equal(run.code, 0, 'exits 0', { report: run.stdout, stderr: run.stderr })
  t.match(run.stdout, /^# Soak run: PASS/, 'the verdict comes first')
  t.equal(run.report, run.stdout, 'the report file holds what was printed')
  t.ok(run.stdout.includes(`| ${SAMPLE_COLUMNS.join(' | ')} |`), 'the samples table has the expected columns, in order')
  for (const check of ['no byte lost or corrupted', 'no unexpected error', 'client aborts cancel the upstream', 'everything drains when traffic stops', 'no growth: RSS', 'no growth: open fds']) {
    t.match(run.stdout, new RegExp(`\\| ${check} \\| pass \\|`), `check "${check}" ran and passed`)
  }
  for (const kind of ['short', 'long', 'abort', 'json', 'chain', 'websocket']) {
    t.match(run.stdout, new RegExp(`\\| ${kind} \\| [1-9]\\d* \\|`), `some ${kind} exchanges ran`)
  }
  const phases = new Set(run.json?.samples.map((s) => s.phase))
  for (const phase of ['idle', 'warm-up', 'middle', 'last', 'drained']) t.ok(phases.has(phase), `a sample in phase ${phase}`)
  const sample = run.json?.samples.find((s) => s.phase === 'middle')
  for (const key of ['rssMb', 'heapUsedMb', 'fds', 'handles', 'activeStreams', 'lagP99Ms']) {
    t.type(sample?.[key], 'number', `samples carry ${key}`)
  }
  t.match(run.svg, /^<svg /, 'an SVG plot is written')
})

t.test('a relay that damages a byte fails the soak', async (t) => {
  const run = await runSoak(['--duration', '3s', '--sabotage', 'corrupt'])
  t.equal(run.code, 1, 'exits 1', { report: run.stdout, stderr: run.stderr })
  t.match(run.stdout, /^# Soak run: FAIL/)
  t.match(run.stdout, /\| no byte lost or corrupted \| \*\*FAIL\*\* \|/)
  t.match(run.stdout, /\*\*corrupted-bytes\*\*/)
  t.same(run.json?.verdict.pass, false)
})
