/**
 * The run as markdown: the machine on top, the targets, then one section per scenario with
 * each proxy's medians over rounds and session-gateway's ratios against each anchor.
 */
import { GATEWAY_ID, PROXIES, TRACING_ID } from '../lib/contenders.mjs'
import { DIRECT } from '../scenarios/long-streams.mjs'
import { SHORT_STREAM, SMALL_REQUEST, SHORT_STREAM_EVENTS } from '../fixtures/responses-sse.mjs'
import { evaluateTargets, medianOf } from './targets.mjs'

const ANCHORS = PROXIES.filter((p) => p.id !== GATEWAY_ID && p.variantOf === undefined)

function fixed (value, digits) {
  return Number.isFinite(value) ? value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—'
}

function table (header, align, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), line(align.map((a) => a === 'r' ? '--:' : '---')), ...rows.map(line)].join('\n')
}

/** Median with the rounds' range in brackets, when there was more than one round. */
function withRange (scenario, id, field, digits) {
  const values = scenario.perProxy[id].map((row) => row[field]).filter(Number.isFinite)
  const mid = fixed(medianOf(scenario, id, field), digits)
  if (values.length < 2) return mid
  return `${mid} (${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)})`
}

function total (scenario, id, field) {
  return scenario.perProxy[id].reduce((sum, row) => sum + row[field], 0)
}

function errorsCell (scenario, id) {
  const errors = total(scenario, id, 'errors')
  if (errors === 0) return '0'
  const kinds = {}
  for (const row of scenario.perProxy[id]) for (const [k, n] of Object.entries(row.errorKinds ?? {})) kinds[k] = (kinds[k] ?? 0) + n
  const detail = Object.entries(kinds).map(([k, n]) => `${k}: ${n}`).join(', ')
  return detail === '' ? String(errors) : `${errors} (${detail})`
}

/** Rows for each proxy in report order; a proxy that did not run says why in its first cell. */
function proxyRows (scenario, run, columns, cells, extra = []) {
  return [...extra, ...PROXIES].map((proxy) => {
    if (scenario.perProxy[proxy.id] !== undefined) return [proxy.label, ...cells(proxy.id)]
    return [proxy.label, `_${whyMissing(proxy, run)}_`, ...new Array(columns - 1).fill('')]
  })
}

function whyMissing (proxy, run) {
  if (!run.options.proxies.includes(proxy.id)) return 'not selected (--proxies)'
  if (proxy.scenarios !== undefined) return `measured in (${proxy.scenarios.join(', ')}) only`
  if (proxy.needs !== undefined && run.tools[proxy.needs] === undefined) {
    return run.options.without.includes(proxy.needs) ? `skipped (--without ${proxy.needs})` : `skipped: ${proxy.needs} is not installed`
  }
  return 'did not run (see failures)'
}

/**
 * session-gateway's value divided by each anchor's, per field. A field with a `floor` (added
 * latencies) gets no ratio when either value is below it: a ratio of two noises means nothing.
 */
function ratioTable (scenario, fields) {
  const rows = ANCHORS.map((anchor) => [anchor.label, ...fields.map(({ field, floor = 0 }) => {
    const gateway = medianOf(scenario, GATEWAY_ID, field)
    const other = medianOf(scenario, anchor.id, field)
    if (floor > 0 && (gateway < floor || other < floor)) return `— (below ${floor} ms)`
    const ratio = gateway / other
    return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '—'
  })])
  return table(['session-gateway ÷', ...fields.map((f) => f.label)], ['l', ...fields.map(() => 'r')], rows)
}

/** Tracing on (every request sampled and exported) against tracing off, when both ran. */
function tracingCost (short) {
  const ratio = (field) => medianOf(short, TRACING_ID, field) / medianOf(short, GATEWAY_ID, field)
  if (!Number.isFinite(ratio('cpuMicrosPerRequest'))) return []
  return [`Tracing on ÷ off (every request sampled, OTLP/protobuf to a local sink): CPU / request ${ratio('cpuMicrosPerRequest').toFixed(2)}×, requests/s ${ratio('requestsPerSecond').toFixed(2)}×, p99 ${ratio('p99Ms').toFixed(2)}×.`, '']
}

function machineLines (run, machine, startedAt, elapsedMs) {
  const load = run.loadAverages.map((l) => l.toFixed(1)).join(' → ')
  const tools = [
    `Node ${machine.node}`,
    machine.nginx ?? 'nginx: none',
    machine.wrk ?? 'wrk: none'
  ]
  const { commit, changedFiles, builtAt } = machine.build
  const source = commit === undefined ? 'outside git' : `commit ${commit}${changedFiles > 0 ? ` + ${changedFiles} changed tracked file(s)` : ''}`
  const built = builtAt === undefined ? 'not built' : `built ${builtAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`
  return [
    `- **Machine:** ${machine.cpus} CPUs (\`nproc\`), ${machine.model}, ${machine.memoryGb.toFixed(1)} GiB, ${machine.kernel}`,
    `- **Software:** ${tools.join(' · ')} · open-file limit ${run.fileLimit.toLocaleString('en')}`,
    `- **Measured:** session-gateway \`dist/src/cli.js\` ${built}, from ${source}`,
    `- **Run:** ${run.options.mode} mode, started ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, took ${(elapsedMs / 60000).toFixed(1)} min; 1-min load average ${load} (start → end; above the CPU count, other work shared the machine)`,
    `- **CPUs:** ${run.placement ?? 'not pinned'}`,
    '- **Rerun:** `npm run bench` (full), `npm run bench -- --quick`, `npm run bench:smoke`; see bench/README.md'
  ]
}

export function renderReport ({ run, machine, results, startedAt, elapsedMs, profiles = [] }) {
  const out = ['# session-gateway benchmark', '', ...machineLines(run, machine, startedAt, elapsedMs), '']
  out.push('Each proxy is its own process on loopback; CPU is its user + system time from `/proc/PID/stat` (nginx: master + worker). Figures are medians over rounds, the rounds alternating the proxies\' order; ranges in brackets are the lowest and highest round. A ratio is session-gateway\'s figure divided by the anchor\'s: below 1.00× is better for CPU, latency and memory, above 1.00× is better for requests/s.', '')
  if (run.notes.length > 0) out.push('**Notes**', '', ...run.notes.map((n) => `- ${n}`), '')
  if (run.failures.length > 0) out.push('**Failures**', '', ...run.failures.map((f) => `- ${f}`), '')

  out.push('## Targets', '', table(['Target (session-gateway)', 'Measured', 'Result'], ['l', 'r', 'l'], evaluateTargets(results).map((t) => [t.label, t.measured, t.result])), '')

  const { short, long, held, large, footprint } = results
  if (footprint !== undefined) {
    const id = GATEWAY_ID
    out.push('## (e) Footprint: start time and idle memory', '',
      `session-gateway started ${footprint.starts} time(s) with its defaults (memory store, info logs, metrics): time from spawning \`node dist/src/cli.js\` to its first 200 on /healthz, and its VmRSS after ${5} more health checks and ${(footprint.idleMs ?? 1000) / 1000} s idle. Median (lowest–highest).`, '',
      table(['Proxy', 'Start to first /healthz ms', 'Idle RSS MB'], ['l', 'r', 'r'],
        [['session-gateway', withRange(footprint, id, 'startMs', 0), withRange(footprint, id, 'idleRssMb', 1)]]), '')
  }
  if (short !== undefined) {
    out.push('## (a) Short streamed responses', '',
      `${short.connections} keep-alive connections, each POSTing a ${SMALL_REQUEST.length}-byte JSON body (no session header) and reading a ${SHORT_STREAM.length.toLocaleString('en')}-byte, ${SHORT_STREAM_EVENTS}-event \`text/event-stream\` reply from ${short.upstream}; load from ${short.loadgen}; ${short.rounds} round(s) of ${short.seconds} s per proxy.`, '',
      table(['Proxy', 'Requests/s', 'CPU µs / request', 'p50 ms', 'p99 ms', 'Errors'], ['l', 'r', 'r', 'r', 'r', 'r'],
        proxyRows(short, run, 5, (id) => [withRange(short, id, 'requestsPerSecond', 0), withRange(short, id, 'cpuMicrosPerRequest', 1), fixed(medianOf(short, id, 'p50Ms'), 2), withRange(short, id, 'p99Ms', 2), errorsCell(short, id)])), '',
      ratioTable(short, [{ label: 'Requests/s', field: 'requestsPerSecond' }, { label: 'CPU / request', field: 'cpuMicrosPerRequest' }, { label: 'p50', field: 'p50Ms' }, { label: 'p99', field: 'p99Ms' }]), '', ...tracingCost(short))
  }
  if (long !== undefined) {
    out.push('## (b) Long streams: latency added per event', '',
      `${long.streams} concurrent streams of ${long.events} delta events ${long.intervalMs} ms apart, from the Node upstream; latency is the reader's receive time minus the upstream's write time (same monotonic clock). "Added" is the proxy's figure minus the direct connection's, in the same round; differences of a few hundredths of a millisecond are noise. ${long.rounds} round(s).`, '',
      table(['Proxy', 'Event p50 ms', 'Event p99 ms', 'Added p50 ms', 'Added p99 ms', 'Events', 'Errors'], ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
        proxyRows(long, run, 6, (id) => [fixed(medianOf(long, id, 'p50Ms'), 3), fixed(medianOf(long, id, 'p99Ms'), 3), id === DIRECT.id ? '—' : fixed(medianOf(long, id, 'addedP50Ms'), 3), id === DIRECT.id ? '—' : fixed(medianOf(long, id, 'addedP99Ms'), 3), total(long, id, 'events').toLocaleString('en'), errorsCell(long, id)], [DIRECT])), '',
      ratioTable(long, [{ label: 'Added p50', field: 'addedP50Ms', floor: 0.02 }, { label: 'Added p99', field: 'addedP99Ms', floor: 0.02 }]), '')
  }
  if (held !== undefined) {
    out.push('## (c) Concurrent streams held open', '',
      `${held.streams.toLocaleString('en')} streams at once through each proxy (started fresh), each open ${held.holdSeconds} s with one event every ${held.intervalMs} ms (${held.events} events). Peak RSS is the kernel's high-water mark (VmHWM) of the proxy process(es); CPU is the proxy's for the whole scenario, opening the streams included. ${held.rounds} round(s).`, '',
      table(['Proxy', 'Streams', 'Errors', 'Peak RSS MB', 'Event p50 ms', 'Event p99 ms', 'p99 once all open ms', 'All open after s', 'CPU s'], ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        proxyRows(held, run, 8, (id) => [held.streams.toLocaleString('en'), errorsCell(held, id), fixed(medianOf(held, id, 'peakRssMb'), 0), fixed(medianOf(held, id, 'p50Ms'), 2), fixed(medianOf(held, id, 'p99Ms'), 2), fixed(medianOf(held, id, 'steadyP99Ms'), 2), fixed(medianOf(held, id, 'allOpenSeconds'), 1), fixed(medianOf(held, id, 'cpuSeconds'), 1)])), '',
      ratioTable(held, [{ label: 'Peak RSS', field: 'peakRssMb' }, { label: 'Event p99', field: 'p99Ms' }, { label: 'p99 once all open', field: 'steadyP99Ms' }, { label: 'CPU', field: 'cpuSeconds' }]), '')
  }
  if (large !== undefined) {
    const size = `${(large.bytes / 2 ** 20).toFixed(large.bytes < 2 ** 20 ? 2 : 0)} MiB`
    out.push('## (d) Large request bodies', '',
      `One client, one kept-alive connection, ${large.requestsPerKind} requests of each kind per round alternating: a ${size} JSON agent history ending with \`previous_response_id\`, and one the same size ending with a field that decides nothing. No session header, so session-gateway reads both whole before choosing the session; the others stream them. Time is from sending the request to the end of the response (the upstream reads the whole body first); "added" is the median of with-minus-without over back-to-back pairs. ${large.rounds} round(s).`, '',
      table(['Proxy', 'With previous_response_id ms', 'Without ms', 'Added ms'], ['l', 'r', 'r', 'r'],
        proxyRows(large, run, 3, (id) => [withRange(large, id, 'withIdMs', 2), withRange(large, id, 'withoutIdMs', 2), fixed(medianOf(large, id, 'addedMs'), 2)])), '',
      ratioTable(large, [{ label: 'With previous_response_id', field: 'withIdMs' }, { label: 'Without', field: 'withoutIdMs' }]), '')
  }
  if (results.routing !== undefined) out.push(...renderRouting(results.routing))
  for (const profile of profiles) out.push(...renderProfile(profile))
  return out.join('\n')
}

function renderRouting (routing) {
  const scenario = { perProxy: routing.perConfig }
  const row = (id, label) => [label, withRange(scenario, id, 'requestsPerSecond', 0), withRange(scenario, id, 'cpuMicrosPerRequest', 1), withRange(scenario, id, 'p99Ms', 2), String(scenario.perProxy[id].reduce((sum, r) => sum + r.errors, 0))]
  return ['## (f) Routing cost: three upstreams against one', '',
    `session-gateway alone, ${routing.rate > 0 ? `${routing.rate.toLocaleString('en')} requests/s (open loop) over ` : ''}${routing.connections} keep-alive connections, each request naming one of ${routing.sessions.toLocaleString('en')} sessions in \`session-id\`; ${routing.rounds} rounds of ${routing.seconds} s per configuration, the two back to back in each round, alternating which goes first.`, '',
    table(['Configuration', 'Requests/s', 'CPU µs / request', 'p99 ms', 'Errors'], ['l', 'r', 'r', 'r', 'r'], [row('one-upstream', 'one upstream (`UPSTREAM_URL`)'), row('three-upstreams', 'three upstreams (`UPSTREAMS`)')]), '',
    `Three ÷ one, CPU per request: median of the rounds' own ratios **${fixed(routing.ratio, 3)}×**, middle half ${fixed(routing.ratioQ1, 3)}–${fixed(routing.ratioQ3, 3)}, range ${fixed(routing.ratioLow, 3)}–${fixed(routing.ratioHigh, 3)}; ${routing.roundsWithin} of ${routing.rounds} rounds at or under the limit. Ratio of the two medians: ${fixed(routing.ratioOfMedians, 3)}×.`, '']
}

function renderProfile ({ scenario, label, file, summary }) {
  return [`## session-gateway CPU profile during (${scenario})${label === undefined ? '' : `, ${label}`}`, '',
    `From \`${file}\` (\`node --cpu-prof\`; profiling slows the gateway, so its figures in this run are not comparable). ${fixed(summary.totalMs, 0)} ms sampled, of which ${fixed(summary.totalMs - summary.idleMs, 0)} ms busy; shares are of busy time (the process idles while the other proxies have their turn).`, '',
    table(['Area', 'Self ms', 'Share'], ['l', 'r', 'r'], summary.areas.slice(0, 14).map((a) => [a.area, fixed(a.selfMs, 0), `${(a.share * 100).toFixed(1)}%`])), '',
    table(['Function', 'Where', 'Self ms', 'Share'], ['l', 'l', 'r', 'r'], summary.functions.map((f) => [`\`${f.name}\``, f.where === '' ? '' : `\`${f.where}\``, fixed(f.selfMs, 0), `${(f.share * 100).toFixed(1)}%`])), '']
}
