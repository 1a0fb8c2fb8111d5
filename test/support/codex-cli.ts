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
export const CODEX_VERSION = '0.169.0'

export interface CodexRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CodexOptions {
  baseURL: string
  args: string[]
  apiKey: string
  /** The provider's `supports_websockets`. */
  supportsWebsockets: boolean
}

export async function runCodex (t: Test, { baseURL, args, apiKey, supportsWebsockets }: CodexOptions): Promise<CodexRun> {
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
  // Never leave a codex behind when an assertion or the tap timeout ends the test early.
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })

  return await new Promise<CodexRun>((resolve, reject) => {
    child.once('error', (err) => {
      reject(new Error(`cannot start the codex CLI at ${CODEX}: ${err.message}. ` +
        `These tests need @openai/codex@${CODEX_VERSION} (devDependency) and its native binary for this platform.`))
    })
    // 'close' rather than 'exit': it also waits for stdout/stderr to be read to their end.
    child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
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
    child.once('error', (err) => reject(new Error(`cannot start the codex CLI at ${CODEX}: ${err.message}`)))
    child.once('close', resolve)
  })
  if (code !== 0 || !output.includes(CODEX_VERSION)) {
    throw new Error(`the codex CLI at ${CODEX} cannot run here (\`codex --version\` exited ${String(code)}):\n${output}\n` +
      `These tests need @openai/codex@${CODEX_VERSION} and its native binary for this platform.`)
  }
}

export function describeRun (run: CodexRun, context: string): string {
  return `codex exited with code ${String(run.code)} signal ${String(run.signal)}; ${context}\n` +
    `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`
}
