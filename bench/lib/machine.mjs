/** The machine a run happened on, and the optional tools (nginx, wrk) found on it. */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { availableParallelism, cpus, release, totalmem } from 'node:os'
import { delimiter, join } from 'node:path'

/** Absolute path of an executable on PATH or in the sbin directories, or undefined. */
export function findExecutable (name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

function versionOf (command, args) {
  // nginx -v prints on stderr; wrk -v exits 1 after printing its version: read both, whatever the status.
  const { stdout, stderr } = spawnSync(command, args, { encoding: 'utf8' })
  return `${stdout ?? ''}${stderr ?? ''}`.trim().split('\n')[0] || 'unknown version'
}

/** `{ nginx, wrk, taskset }`: paths of the tools to use; a tool in `without` counts as missing. */
export function findTools (without) {
  const tools = {}
  for (const name of ['nginx', 'wrk']) {
    if (!without.includes(name)) tools[name] = findExecutable(name)
  }
  tools.taskset = findExecutable('taskset')
  return tools
}

export function describeMachine (tools) {
  let model = cpus()[0]?.model ?? 'unknown CPU'
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model
  } catch {
    // not Linux: os.cpus() said enough
  }
  return {
    cpus: availableParallelism(),
    model,
    node: process.version,
    kernel: `${process.platform} ${release()}`,
    memoryGb: totalmem() / 2 ** 30,
    nginx: tools.nginx === undefined ? undefined : versionOf(tools.nginx, ['-v']).replace(/^nginx version:\s*/, ''),
    wrk: tools.wrk === undefined ? undefined : versionOf(tools.wrk, ['-v']).split(' [')[0]
  }
}

/**
 * Which session-gateway was measured: the commit, how many tracked files differed from it, and
 * when dist/ was built. Read-only git (`--no-optional-locks`: not even an index refresh).
 */
export function describeBuild (root, cli) {
  const git = (...args) => spawnSync('git', ['--no-optional-locks', ...args], { cwd: root, encoding: 'utf8' })
  const head = git('rev-parse', '--short', 'HEAD')
  const status = git('status', '--porcelain', '--untracked-files=no')
  let builtAt
  try {
    builtAt = statSync(cli).mtime
  } catch {
    builtAt = undefined
  }
  return {
    commit: head.status === 0 ? head.stdout.trim() : undefined,
    changedFiles: status.status === 0 ? status.stdout.split('\n').filter(Boolean).length : undefined,
    builtAt
  }
}
