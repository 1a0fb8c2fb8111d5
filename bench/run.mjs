#!/usr/bin/env node
/**
 * session-gateway's benchmark against its anchors: nginx, bare node:http + undici, and bare
 * Fastify + @fastify/http-proxy, each its own process in front of the same upstream on loopback.
 * Writes a markdown report to bench/results/ and stdout; progress goes to stderr.
 * See bench/README.md, or `node bench/run.mjs --help`.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { GATEWAY_CLI, GATEWAY_ID, proxiesToRun, ROOT } from './lib/contenders.mjs'
import { describeBuild, describeMachine, findTools } from './lib/machine.mjs'
import { readOptions, USAGE } from './lib/options.mjs'
import { openFileLimits, pinProcesses } from './lib/processes.mjs'
import { summarizeCpuProfile } from './report/cpu-profile.mjs'
import { renderReport } from './report/render.mjs'
import { footprint } from './scenarios/footprint.mjs'
import { heldStreams } from './scenarios/held-streams.mjs'
import { largeBodies } from './scenarios/large-bodies.mjs'
import { longStreams } from './scenarios/long-streams.mjs'
import { routingCost } from './scenarios/routing.mjs'
import { shortStreams } from './scenarios/short-streams.mjs'

const SCENARIOS = [
  { key: 'a', name: 'short', run: shortStreams },
  { key: 'b', name: 'long', run: longStreams },
  { key: 'c', name: 'held', run: heldStreams },
  { key: 'd', name: 'large', run: largeBodies },
  { key: 'e', name: 'footprint', run: footprint },
  // Not in the default set: it compares the gateway with itself, not with the anchors.
  { key: 'f', name: 'routing', run: routingCost }
]

/**
 * With two CPUs or more, the measured proxy runs alone on the last one and everything else (the
 * upstream, wrk, this process with its own load generators) on the others.
 */
function placeProcesses (run, machine) {
  const { tools, options } = run
  if (!options.pin || tools.taskset === undefined || machine.cpus < 2) {
    run.placement = 'not pinned'
    run.note(`Processes not pinned to CPUs (${!options.pin ? '--no-pin' : tools.taskset === undefined ? 'taskset not found' : 'one CPU'}): the proxy shares its CPU with the load it serves, so rounds vary more.`)
    return
  }
  const last = machine.cpus - 1
  const load = last === 1 ? '0' : `0-${last - 1}`
  pinProcesses({ taskset: tools.taskset, proxy: String(last), load })
  spawnSync(tools.taskset, ['-a', '-p', '-c', load, String(process.pid)], { stdio: 'ignore' })
  run.placement = `proxy on CPU ${last}; upstream, load generator and bench on CPU ${load}`
  run.note(`Pinned (taskset): the measured proxy alone on CPU ${last}; the upstream, the load generator and the bench on CPU ${load}.`)
}

async function main () {
  let options
  try {
    options = readOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${USAGE}\n`)
    return 2
  }
  if (options.help) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  const startedAt = new Date()
  const tools = findTools(options.without)
  const machine = { ...describeMachine(tools), build: describeBuild(ROOT, GATEWAY_CLI) }
  const run = {
    options,
    tools,
    dir: mkdtempSync(join(tmpdir(), 'session-gateway-bench-')),
    fileLimit: Math.min(openFileLimits().hard, 1_048_576),
    cpuProfileDir: undefined,
    loadAverages: [loadavg()[0]],
    notes: [],
    failures: [],
    note: (text) => run.notes.push(text),
    fail: (text) => {
      run.failures.push(text)
      process.stderr.write(`FAIL ${text}\n`)
    },
    progress: (text) => process.stderr.write(`${text}\n`)
  }
  if (tools.nginx === undefined) {
    run.note(`nginx ${options.without.includes('nginx') ? 'left out (--without nginx)' : 'is not installed'}: the static upstream is the Node upstream and the nginx anchor is skipped (\`apt-get install nginx-light\`).`)
  }
  if (tools.wrk === undefined) {
    run.note(`wrk ${options.without.includes('wrk') ? 'left out (--without wrk)' : 'is not installed'}: (a) load comes from an undici pool inside the bench process, which competes with the proxies for CPU (\`apt-get install wrk\`).`)
  }
  placeProcesses(run, machine)
  if (machine.cpus < 4) run.note(`${machine.cpus} CPUs: ${run.placement === 'not pinned' ? 'the load generator, the upstream and the proxy share them' : 'the load generator and the upstream share what the proxy does not have'}, so absolute figures are low and rounds vary; compare ratios.`)
  run.progress(`scratch directory ${run.dir}`)

  const results = {}
  const profiles = []
  for (const scenario of SCENARIOS) {
    if (!options.scenarios.includes(scenario.key)) continue
    const profileDir = options.cpuProfile ? join(ROOT, 'bench', 'results', 'profiles', `${startedAt.toISOString().replace(/[:.]/g, '-')}-${scenario.key}`) : undefined
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
    run.cpuProfileDir = profileDir
    run.scenarioKey = scenario.key
    try {
      results[scenario.name] = await scenario.run(run)
    } catch (err) {
      run.fail(`(${scenario.key}) did not complete: ${err.stack ?? err}`)
    } finally {
      run.cpuProfileDir = undefined
      run.scenarioKey = undefined
    }
    if (profileDir !== undefined) {
      for (const profile of readProfiles(run, profileDir)) profiles.push({ scenario: scenario.key, ...profile })
    }
  }
  if (options.smoke) checkSmoke(run, results)
  run.loadAverages.push(loadavg()[0])

  const report = renderReport({ run, machine, results, startedAt, elapsedMs: Date.now() - startedAt.getTime(), profiles })
  const out = options.out ?? join(ROOT, 'bench', 'results', options.smoke ? 'smoke.md' : 'latest.md')
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, report + '\n')
  // The numbers behind the report, to compare runs or render them again.
  const { note, fail, progress, scenarioKey, ...settings } = run
  writeFileSync(out.replace(/(\.md)?$/, '.json'), JSON.stringify({ machine, run: settings, results, profiles }, null, 2) + '\n')
  process.stdout.write(report + '\n')
  run.progress(`report written to ${relative(process.cwd(), out) || out}`)
  if (options.keep || run.failures.length > 0) {
    run.progress(`logs and configs kept in ${run.dir}`)
  } else {
    rmSync(run.dir, { recursive: true, force: true })
  }
  return run.failures.length > 0 ? 1 : 0
}

/** Smoke mode's contract: every proxy that could run did, in every scenario, without an error. */
function checkSmoke (run, results) {
  for (const [name, scenario] of Object.entries(results)) {
    if (scenario.perProxy === undefined) continue // (f) compares the gateway with itself
    // (e) measures session-gateway alone: the anchors have no /healthz to start against.
    const proxies = name === 'footprint' ? proxiesToRun(run).filter((p) => p.id === GATEWAY_ID) : proxiesToRun(run, SCENARIOS.find((s) => s.name === name)?.key)
    for (const proxy of proxies) {
      const rows = scenario.perProxy[proxy.id]
      if (rows === undefined) {
        run.fail(`smoke: ${proxy.label} has no result in scenario ${name}`)
        continue
      }
      const errors = rows.reduce((sum, row) => sum + (row.errors ?? 0), 0)
      if (errors > 0) run.fail(`smoke: ${proxy.label} had ${errors} errors in scenario ${name}`)
    }
  }
}

/** The profile in `dir`, or (f) one per configuration in its subfolders, each with that folder's name. */
function readProfiles (run, dir) {
  const entries = readdirSync(dir, { withFileTypes: true })
  const folders = entries.filter((e) => e.isDirectory()).map((e) => ({ label: e.name, dir: join(dir, e.name) }))
  const profiles = []
  for (const { label, dir: from } of folders.length > 0 ? folders : [{ label: undefined, dir }]) {
    const files = readdirSync(from).filter((f) => f.endsWith('.cpuprofile'))
    if (files.length === 0) {
      run.note(`--cpu-prof: ${GATEWAY_ID} wrote no profile to ${from} (did it exit cleanly?).`)
      continue
    }
    const file = join(from, files[0])
    profiles.push({ label, file: relative(ROOT, file), summary: summarizeCpuProfile(file, 20) })
  }
  return profiles
}

process.exitCode = await main()
