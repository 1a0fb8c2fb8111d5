/**
 * The benchmark's child processes: starting one with its output in a file, waiting for its
 * port, reading its CPU time and memory from /proc (a process and its children, for nginx's
 * master and worker), and stopping it.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** Children still running; killed if the bench itself exits early, so none is left behind. */
const live = new Set()
process.once('exit', () => { for (const child of live) child.kill('SIGKILL') })

/**
 * A signal (Ctrl-C, `kill`) ends the process without its 'exit' hooks: once a child is started,
 * these signals end it through `process.exit` instead, so the hook above still runs. Not before:
 * a test that imports only the port helpers keeps its runner's own signal handling.
 */
let exitOnSignals = false
function killChildrenOnSignals () {
  if (exitOnSignals) return
  exitOnSignals = true
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) process.once(signal, () => process.exit(code))
}

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100

/**
 * Where the run's processes may run: `taskset -c` CPU lists by role (`proxy`: the process
 * measured; `load`: the upstream, the load generator and the bench itself), or undefined when
 * nothing is pinned. A measured proxy alone on its CPU is not preempted by the load generator
 * it is serving, which is most of what made one round differ from the next on a small machine.
 */
let placement

export function pinProcesses (cpus) {
  placement = cpus
}

/** `[command, args]`, run by taskset on the CPUs of `role` when the run pins processes. */
export function pinned (role, command, args) {
  const cpus = role === undefined ? undefined : placement?.[role]
  return cpus === undefined ? [command, args] : [placement.taskset, ['-c', cpus, command, ...args]]
}

/**
 * A loopback port nothing listens on right now, for a program that takes no port 0: another
 * process may bind it before that program does, which `waitForOwnPort` tells.
 */
export async function freePort () {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/**
 * Starts `command` with stdout and stderr appended to `logFile`. The returned handle knows
 * whether the process is still running and how to stop it. `role` (`proxy` or `load`) pins it
 * to that role's CPUs when the run pins processes.
 */
export function startProcess (name, command, args, { env, logFile, cwd, role }) {
  const fd = openSync(logFile, 'a')
  // taskset execs the command: the pid stays the process measured.
  const [file, argv] = pinned(role, command, args)
  const child = spawn(file, argv, { env, cwd, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  live.add(child)
  killChildrenOnSignals()
  let exit
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      exit = { code, signal }
      resolve(exit)
    })
    child.once('error', (err) => {
      live.delete(child)
      exit = { code: null, signal: null, error: err }
      resolve(exit)
    })
  })
  return {
    name,
    pid: child.pid,
    logFile,
    exited,
    running: () => exit === undefined,
    exitDescription: () => exit === undefined ? 'running' : exit.error?.message ?? `exit ${exit.code ?? exit.signal}`,
    /** Asks the process to stop (`signal`), and kills it if it has not within `graceMs`. */
    async stop (signal = 'SIGTERM', graceMs = 10_000) {
      if (exit !== undefined) return exit
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

/** Between two looks at a starting process's sockets: short, a start takes 100 ms or more. */
const PROBE_INTERVAL_MS = 10

/**
 * How long a process may take to start listening. A start costs up to a CPU-second (fastify's
 * anchor), and on a busy 2-CPU machine with the proxy pinned to one CPU (two smoke runs at once,
 * other tests beside them) that has stretched past 15 s: this only tells a stuck start from a
 * slow one.
 */
const START_TIMEOUT_MS = 60_000

/**
 * The origins `proc` listens on, once it listens on `count` ports. The bench's own processes and
 * the gateway listen on port 0 and this reads which port each got from the kernel (/proc), so
 * no port is picked in advance for another process (another run, another test) to take first.
 */
export async function waitForListening (proc, { count = 1, timeoutMs = START_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!proc.running()) throw new Error(`${proc.name} exited (${proc.exitDescription()}) before listening; see ${proc.logFile}`)
    const ports = listeningPorts([proc.pid])
    if (ports.length >= count) return ports.map((port) => `http://127.0.0.1:${port}`)
    if (Date.now() > deadline) throw new Error(`${proc.name} did not listen within ${timeoutMs} ms; see ${proc.logFile}`)
    await sleep(PROBE_INTERVAL_MS)
  }
}

/** A port picked in advance (`freePort`) that another process bound before ours did. */
export class PortTakenError extends Error {
  name = 'PortTakenError'
}

/**
 * As `waitForListening`, for a program that cannot listen on port 0 (nginx): resolves once `proc`
 * (or a child of it) holds the listener on `port`, so a process that took the port between
 * `freePort` and `proc`'s bind is never mistaken for it. Rejects with `PortTakenError` when that
 * happened, so the caller can try another port.
 */
export async function waitForOwnPort (proc, port, timeoutMs = START_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (listeningPorts(processTree(proc.pid)).includes(port)) return
    if (!proc.running() || Date.now() > deadline) {
      const why = proc.running() ? `did not listen on ${port} within ${timeoutMs} ms` : `exited (${proc.exitDescription()}) before listening`
      if (hasListener(port)) throw new PortTakenError(`${proc.name} ${why}: another process holds port ${port}; see ${proc.logFile}`)
      throw new Error(`${proc.name} ${why}; see ${proc.logFile}`)
    }
    await sleep(PROBE_INTERVAL_MS)
  }
}

/**
 * The ports these processes listen on at 127.0.0.1 (or on a wildcard address): their sockets
 * (/proc/PID/fd) matched with the kernel's table of listening ones. The table is read only
 * when they hold a socket, so a process still starting costs a directory listing per look.
 */
export function listeningPorts (pids) {
  const sockets = new Set()
  for (const pid of pids) {
    let fds
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue // gone
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
        if (target.startsWith('socket:')) sockets.add(target)
      } catch {} // closed between the listing and the read
    }
  }
  if (sockets.size === 0) return []
  return [...new Set(loopbackListeners().filter(({ socket }) => sockets.has(socket)).map(({ port }) => port))]
}

/** Whether any process listens where a bind to 127.0.0.1:`port` would collide. */
export function hasListener (port) {
  return loopbackListeners().some((listener) => listener.port === port)
}

/** Local addresses, as /proc/net/tcp{,6} write them, that 127.0.0.1 collides with: itself and the wildcards. */
const LOOPBACK_OR_ANY = new Set(['0100007F', '00000000', '0000000000000000FFFF00000100007F', '00000000000000000000000000000000'])

/** `{ socket: 'socket:[INODE]', port }` of every socket listening on 127.0.0.1 or a wildcard address. */
function loopbackListeners () {
  const listeners = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let rows
    try {
      rows = readFileSync(table, 'utf8').split('\n').slice(1)
    } catch {
      continue // no IPv6
    }
    for (const row of rows) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = row.trim().split(/\s+/)
      const [address, port] = (fields[1] ?? '').split(':')
      if (fields[3] === '0A' && LOOPBACK_OR_ANY.has(address)) listeners.push({ socket: `socket:[${fields[9]}]`, port: Number.parseInt(port, 16) })
    }
  }
  return listeners
}

/** The process and its direct children (nginx's workers), by pid. */
export function processTree (pid) {
  const pids = [pid]
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    if (children !== '') pids.push(...children.split(/\s+/).map(Number))
  } catch {
    // gone, or a kernel without the children file: the process alone
  }
  return pids
}

/** User + system CPU seconds used so far by these processes (all their threads). */
export function cpuSeconds (pids) {
  let ticks = 0
  for (const pid of pids) {
    let stat
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue
    }
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks / TICKS_PER_SECOND
}

/**
 * CPU seconds used so far by these processes, from the scheduler's own nanosecond count of
 * every thread (`/proc/PID/task/TID/schedstat`); `cpuSeconds`' 10 ms ticks are too coarse for
 * half-second slices. Falls back to the ticks where schedstat is missing.
 */
export function cpuSecondsPrecise (pids) {
  let nanos = 0
  for (const pid of pids) {
    let tasks
    try {
      tasks = readdirSync(`/proc/${pid}/task`)
    } catch {
      return cpuSeconds(pids)
    }
    for (const task of tasks) {
      try {
        nanos += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0])
      } catch {} // a thread that ended between the listing and the read
    }
  }
  return nanos / 1e9
}

/** Resident memory of these processes in bytes: now (`VmRSS`) and the peak so far (`VmHWM`). */
export function memoryBytes (pids) {
  let rss = 0
  let peak = 0
  for (const pid of pids) {
    let status
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8')
    } catch {
      continue
    }
    rss += kilobytes(status, 'VmRSS') * 1024
    peak += kilobytes(status, 'VmHWM') * 1024
  }
  return { rss, peak }
}

function kilobytes (status, field) {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return match === null ? 0 : Number(match[1])
}

/** The hard and soft limits on open files of this process (children inherit them). */
export function openFileLimits () {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/)
    const number = (value) => value === 'unlimited' ? Infinity : Number(value)
    return { soft: number(soft), hard: number(hard) }
  } catch {
    return { soft: 1024, hard: 1024 }
  }
}
