/**
 * (e) What a sidecar costs before any traffic: session-gateway started again and again with its
 * defaults, the time from spawning `node dist/src/cli.js` to its first 200 on /healthz, and its
 * resident memory (VmRSS) once it has answered a few health checks and sat idle for a second
 * (`idleMs`; none in smoke mode, which only checks it starts).
 * A thousand pods pay the idle memory a thousand times, and the start time gates each pod.
 *
 * The port is picked before the spawn, so /healthz can be polled from the first millisecond,
 * as a kubelet polls a port it was told; a start whose port another process took first (its
 * answer was not the gateway's) is not counted and is made again on another port.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { GATEWAY_CLI, GATEWAY_ID, ROOT } from '../lib/contenders.mjs'
import { freePort, hasListener, listeningPorts, PortTakenError } from '../lib/processes.mjs'

const HEALTH_CHECKS = 5
/** Starts tried for one measurement when another process keeps taking the port picked. */
const PORT_TRIES = 3

export async function footprint (run) {
  const { starts, idleMs } = run.options.footprint
  const results = { starts, idleMs, perProxy: { [GATEWAY_ID]: [] } }
  for (let i = 0; i < starts; i++) {
    const row = await startOnPort(run, idleMs)
    run.progress(`(e) start ${i + 1}/${starts}: first /healthz after ${row.startMs.toFixed(0)} ms, idle RSS ${row.idleRssMb.toFixed(1)} MB`)
    results.perProxy[GATEWAY_ID].push(row)
  }
  return results
}

async function startOnPort (run, idleMs) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(idleMs)
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt === PORT_TRIES) throw err
      run.progress(`(e) ${err.message}; starting again on another port`)
    }
  }
}

async function startOnce (idleMs) {
  const port = await freePort()
  const startedAt = performance.now()
  const child = spawn(process.execPath, [GATEWAY_CLI], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' },
    stdio: 'ignore'
  })
  try {
    const health = `http://127.0.0.1:${port}/healthz`
    // Polled, as a kubelet or load balancer would: the first 200 is the moment it can serve.
    while (!(await answers(health))) {
      if (child.exitCode !== null) {
        // It could not bind: the port went to another process between freePort and the spawn.
        if (hasListener(port)) throw new PortTakenError(`port ${port}: taken by another process before the gateway bound it`)
        throw new Error(`the gateway exited with ${child.exitCode} before answering`)
      }
      await sleep(2)
    }
    const startMs = performance.now() - startedAt
    if (!listeningPorts([child.pid]).includes(port)) throw new PortTakenError(`port ${port}: the first 200 came from another process`)
    for (let i = 0; i < HEALTH_CHECKS; i++) await answers(health)
    if (idleMs > 0) await sleep(idleMs)
    return { startMs, idleRssMb: residentMb(child.pid) }
  } finally {
    child.kill('SIGKILL')
  }
}

async function answers (url) {
  try {
    const response = await fetch(url)
    await response.arrayBuffer()
    return response.status === 200
  } catch {
    return false
  }
}

function residentMb (pid) {
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return kb / 1024
}
