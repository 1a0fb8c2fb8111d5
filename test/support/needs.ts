/**
 * Tests that need a program the machine may lack (redis-server, openssl, chromium) ask for it
 * here, in one place: `t.test('…', needs('redis-server'), async (t) => …)`.
 *
 * Present → the test runs. Missing → the test is skipped with a message saying how to install
 * it, so `npm test` passes on a fresh machine. Under `CI=true` a missing program is an error
 * instead: CI installs everything (.ci/run), so a skip there would hide a lost test.
 */
import { spawnSync } from 'node:child_process'

interface Requirement {
  /** What the message calls it. */
  what: string
  command: string
  args: string[]
  /** Whether the probe's exit code and output show it works as the tests need. */
  works: (status: number | null, output: string) => boolean
  install: string
}

const REQUIREMENTS = {
  'redis-server': {
    what: 'redis-server',
    command: 'redis-server',
    args: ['--version'],
    works: (status) => status === 0,
    install: 'apt-get install -y redis-server'
  },
  'redis-cli': {
    what: 'redis-cli',
    command: 'redis-cli',
    args: ['--version'],
    works: (status) => status === 0,
    install: 'apt-get install -y redis-server (it brings redis-cli)'
  },
  // Built without TLS, redis-server refuses `tls-port` as an unknown directive; built with it,
  // it accepts the option and then exits because it was told to listen nowhere.
  'redis-server-tls': {
    what: 'redis-server built with TLS',
    command: 'redis-server',
    args: ['--tls-port', '0', '--port', '0'],
    works: (_status, output) => output.includes('not listen anywhere'),
    install: "apt-get install -y redis-server (Debian's is built with TLS)"
  },
  openssl: {
    what: 'openssl',
    command: 'openssl',
    args: ['version'],
    works: (status) => status === 0,
    install: 'apt-get install -y openssl'
  },
  chromium: {
    what: 'chromium',
    command: 'chromium',
    args: ['--version'],
    works: (status) => status === 0,
    install: 'apt-get install -y chromium'
  }
} satisfies Record<string, Requirement>

export type Program = keyof typeof REQUIREMENTS

/** Tap test options: `{ skip: false }` when every program works, else a skip with the reason. */
export interface NeedsOptions { skip: false | string }

const probed = new Map<Program, boolean>()

/** Whether `program` is on PATH and works (probed once per test file). */
export function has (program: Program): boolean {
  let works = probed.get(program)
  if (works === undefined) {
    const { command, args, works: check } = REQUIREMENTS[program] as Requirement
    const probe = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 })
    works = probe.error === undefined && check(probe.status, `${probe.stdout}${probe.stderr}`)
    probed.set(program, works)
  }
  return works
}

/**
 * `{ skip: false }` when every program is there; otherwise a skip naming what is missing and
 * how to install it; under `CI=true`, throws that message instead.
 */
export function needs (...programs: Program[]): NeedsOptions {
  const missing = programs.filter((program) => !has(program)).map((program) => REQUIREMENTS[program] as Requirement)
  if (missing.length === 0) return { skip: false }
  const why = missing.map(({ what, install }) => `no ${what} found on PATH (install it: ${install})`).join('; ')
  if (process.env.CI === 'true') throw new Error(`${why}: under CI=true these tests must run, not be skipped`)
  return { skip: `${why}: skipped` }
}
