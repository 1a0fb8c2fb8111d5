/**
 * Runs the real codex CLI (node_modules/.bin/codex, its native binary) against a base URL
 * through a throwaway CODEX_HOME, with nothing on stdin and only the environment it needs.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export const CODEX = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'codex')
/** The version these tests were written against. */
export const CODEX_VERSION = '0.169.0'
/** The tap timeout for a test that runs codex: a cold start of the native binary can be slow on a loaded CI machine; a turn takes < 1 s. */
export const CODEX_TEST_TIMEOUT = 60_000
/** A codex still running this long is stopped, so the test fails with what it printed before the tap timeout ends it. */
export const CODEX_WATCHDOG = CODEX_TEST_TIMEOUT - 10_000

const NEEDS = `These tests need @openai/codex (devDependency, written against ${CODEX_VERSION}) and its native binary for this platform.`

export interface CodexRun {
  code: number | null
  signal: NodeJS.Signals | null
  /** True when the watchdog had to stop it. */
  hung: boolean
  stdout: string
  stderr: string
}

export interface CodexOptions {
  baseURL: string
  args: string[]
  apiKey: string
  /** The provider's `supports_websockets`; off unless asked for. */
  supportsWebsockets?: boolean
  /** How long codex may run before it is stopped; defaults to CODEX_WATCHDOG. */
  watchdogMs?: number
}

/** Runs codex to its exit. Its temporary directories are removed, and a codex still running stopped, at teardown. */
export async function runCodex (t: Test, { baseURL, args, apiKey, supportsWebsockets = false, watchdogMs = CODEX_WATCHDOG }: CodexOptions): Promise<CodexRun> {
  const home = await mkdtemp(join(tmpdir(), 'gw-codex-home-'))
  const codexHome = await mkdtemp(join(tmpdir(), 'gw-codex-codexhome-'))
  t.teardown(async () => {
    await rm(home, { recursive: true, force: true })
    await rm(codexHome, { recursive: true, force: true })
  })
  await writeFile(join(codexHome, 'config.toml'), codexConfig(baseURL, supportsWebsockets))

  const child = spawn(CODEX, args, {
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { OPENAI_API_KEY: apiKey, CODEX_HOME: codexHome, HOME: home, PATH: process.env.PATH ?? '' }
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  // SIGTERM, not SIGKILL: bin/codex.js forwards it to the native binary, which SIGKILL would orphan.
  let hung = false
  const watchdog = setTimeout(() => { hung = true; child.kill('SIGTERM') }, watchdogMs)
  // Never leave a codex behind when an assertion or the tap timeout ends the test early.
  t.teardown(() => {
    clearTimeout(watchdog)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  })

  return await new Promise<CodexRun>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(watchdog)
      reject(new Error(`cannot start the codex CLI at ${CODEX}: ${err.message}. ${NEEDS}`))
    })
    // 'close' rather than 'exit': it also waits for stdout/stderr to be read to their end.
    child.once('close', (code, signal) => {
      clearTimeout(watchdog)
      resolve({ code, signal, hung, stdout, stderr })
    })
  })
}

function codexConfig (baseURL: string, supportsWebsockets: boolean): string {
  return [
    'model = "gpt-5"',
    'model_provider = "gw"',
    '[analytics]',
    'enabled = false',
    '[features]',
    'plugins = false',
    'shell_snapshot = false',
    '[model_providers.gw]',
    'name = "session-gateway"',
    `base_url = ${JSON.stringify(baseURL)}`,
    'env_key = "OPENAI_API_KEY"',
    'wire_api = "responses"',
    `supports_websockets = ${String(supportsWebsockets)}`,
    'request_max_retries = 0',
    'stream_max_retries = 0',
    ''
  ].join('\n')
}

/** Fails loudly, once, when the binary cannot run here at all (wrong platform, missing optional dependency). */
export async function checkCodexRuns (): Promise<void> {
  const child = spawn(CODEX, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start the codex CLI at ${CODEX}: ${err.message}. ${NEEDS}`)))
    child.once('close', resolve)
  })
  if (code !== 0 || !/^codex-cli \d/m.test(output)) {
    throw new Error(`the codex CLI at ${CODEX} cannot run here (\`codex --version\` exited ${String(code)}):\n${output}\n${NEEDS}`)
  }
}

/** A failed assertion's message: how codex ended, what it printed, and `context` (how far it got). */
export function describeRun (run: CodexRun, context: string): string {
  return `codex exited with code ${String(run.code)} signal ${String(run.signal)}${run.hung ? ' (hung: stopped by the watchdog)' : ''}; ${context}\n` +
    `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`
}
