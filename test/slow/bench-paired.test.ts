/**
 * `node bench/paired.mjs` still measures what it prints: at tiny sizes (two rounds of a second,
 * 200 requests/s), session-gateway against the floor and tracing on against off each print a
 * line per round with both proxies' CPU per request and their ratio, then the median of those
 * ratios; a bad option is a one-line message and exit code 2, before any process starts. The
 * two comparisons run at the same time.
 * `npm test` builds dist/ first, which the gateway runs from.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { envWithoutTapHooks } from '../support/child-env.js'

const ROOT = join(import.meta.dirname, '..', '..')
const PAIRED = join(ROOT, 'bench', 'paired.mjs')
const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const TINY = ['--rounds', '2', '--seconds', '1', '--warmup', '0.5', '--rate', '200', '--connections', '4']

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" (npm test does) first`)
t.setTimeout(180_000)

async function paired (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const logs = mkdtempSync(join(tmpdir(), 'bench-paired-'))
  try {
    const child = spawn(process.execPath, [PAIRED, ...args], { cwd: ROOT, env: { ...envWithoutTapHooks(), TMPDIR: logs }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    return { code, stdout, stderr }
  } finally {
    rmSync(logs, { recursive: true, force: true })
  }
}

/** Each round's ratio as printed, checked against the µs figures printed beside it. */
function roundRatios (t: Test, stdout: string): number[] {
  const rounds = [...stdout.matchAll(/^round \d+: A ([\d.]+) µs, B ([\d.]+) µs, ([\d.]+)×$/gm)]
  t.equal(rounds.length, 2, 'a line per round, with no errors')
  for (const [, a, b, ratio] of rounds) t.ok(Math.abs(Number(b) / Number(a) - Number(ratio)) < 0.002, `round ratio ${ratio} is B ÷ A`)
  return rounds.map((round) => Number(round[3]))
}

// Both started now, each awaited by its test: they wait mostly on their processes starting.
const runs = [
  { label: 'session-gateway ÷ the floor', run: paired(TINY) },
  { label: 'tracing on ÷ off', run: paired(['--a', 'gateway', '--b', 'gateway-tracing', ...TINY]) }
]

for (const { label, run: running } of runs) {
  t.test(`${label}: a ratio per round and their median`, async (t) => {
    const run = await running
    t.equal(run.code, 0, `exit code; stderr:\n${run.stderr}`)
    const ratios = roundRatios(t, run.stdout)
    const median = Number(/^B ÷ A: median ([\d.]+)×/m.exec(run.stdout)?.[1])
    t.ok(Math.abs(median - (ratios[0]! + ratios[1]!) / 2) < 0.002, 'the median of two rounds is their mean')
  })
}

t.test('a bad option: one line naming it, exit code 2', async (t) => {
  const run = await paired(['--a', 'nginx'])
  t.equal(run.code, 2)
  t.equal(run.stderr, 'bench/paired.mjs: --a: expected floor, gateway, gateway-tracing or cli:PATH, got "nginx"\n')
  t.equal(run.stdout, '', 'nothing was measured')
})
