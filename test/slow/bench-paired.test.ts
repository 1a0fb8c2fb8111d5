/**
 * `node bench/paired.mjs` still measures what it prints: at tiny sizes (two rounds of a second,
 * 200 requests/s), session-gateway against the floor and tracing on against off each print a
 * line per round with both proxies' CPU per request and their ratio, then the median of those
 * ratios; a bad option is a one-line message and exit code 2, before any process starts. The
 * two comparisons run at the same time.
 * `npm test` builds dist/ first, which the gateway runs from.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { envWithoutTapHooks } from '../support/child-env.js'
import { until } from '../support/polling.js'

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
  t.equal(run.stderr, 'bench/paired.mjs: --a: expected floor, gateway, gateway-tracing, cli:PATH or cli-tracing:PATH, got "nginx"\n')
  t.equal(run.stdout, '', 'nothing was measured')
})

t.test('an unknown option, or one without its value: one line, exit code 2, no stack trace', async (t) => {
  for (const args of [['--bogus'], ['--rounds']]) {
    const run = await paired(args)
    t.equal(run.code, 2, `${args.join(' ')}: exit code`)
    t.match(run.stderr, /^bench\/paired\.mjs: .*--(bogus|rounds).*\(--help lists them\)\n$/, `${args.join(' ')}: one line naming the option`)
  }
  const help = await paired(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--warmup 10/, '--help lists the options with their defaults')
})

t.test('regression: stopped by a signal mid-round, it leaves none of its processes running', async (t) => {
  // Each process it starts writes its output to a file under TMPDIR: once the run is gone, no
  // process may still hold one open. Before, SIGTERM skipped the 'exit' hook that kills them.
  const logs = mkdtempSync(join(tmpdir(), 'bench-paired-signal-'))
  t.teardown(() => { rmSync(logs, { recursive: true, force: true }) })
  const child = spawn(process.execPath, [PAIRED, '--rounds', '1', '--seconds', '60', '--warmup', '60', '--rate', '50', '--connections', '2'], { cwd: ROOT, env: { ...envWithoutTapHooks(), TMPDIR: logs }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  // Its header line is printed once the upstream listens; the round's proxies start right after.
  await new Promise<void>((resolve) => child.stdout.on('data', (chunk: Buffer) => { if (chunk.toString('utf8').includes('B ÷ A')) resolve() }))
  await until(() => holdersOf(logs), (pids) => pids.length >= 3, 'the upstream and both proxies running')
  child.kill('SIGTERM')
  t.equal(await exited, 143, 'it exits as a process ended by SIGTERM does')
  await until(() => holdersOf(logs), (pids) => pids.length === 0, 'every process it started gone')
  t.pass('none left')
})

/** Processes with a file under `dir` open (the bench's children write their output there). */
function holdersOf (dir: string): number[] {
  const pids: number[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readdirSync(`/proc/${pid}/fd`).some((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(dir) } catch { return false } })) pids.push(Number(pid))
    } catch {}
  }
  return pids
}
