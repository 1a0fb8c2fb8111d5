/**
 * The soak's report: markdown (verdict, checks, traffic, the samples over time), the samples
 * as JSON, and an SVG plot of the main series (turned into a PNG when ImageMagick or rsvg is
 * installed; skipped otherwise).
 */
import { spawnSync } from 'node:child_process'
import { KIND_DESCRIPTIONS } from './traffic.mjs'

/** The samples table's columns, in order: [header, render]. The smoke test checks these headers. */
export const SAMPLE_COLUMNS = [
  ['t (s)', (s, t0) => ((s.at - t0) / 1000).toFixed(0)],
  ['phase', (s) => s.phase],
  ['RSS MB', (s) => num(s.rssMb, 1)],
  ['heap MB', (s) => num(s.heapUsedMb, 1)],
  ['fds', (s) => num(s.fds, 0)],
  ['handles', (s) => num(s.handles, 0)],
  ['active streams', (s) => `${num(s.activeStreams, 0)}${s.activeWebSocket > 0 ? ` (${s.activeWebSocket} ws)` : ''}`],
  ['sessions', (s) => num(s.sessions, 0)],
  ['series', (s) => num(s.series, 0)],
  ['lag p99 ms', (s) => num(s.lagP99Ms, 1)],
  ['lag max ms', (s) => num(s.lagMaxMs, 1)],
  ['CPU %', (s) => num(s.cpuPercent, 0)],
  ['done/s', (s) => num(s.finishedPerS, 1)],
  ['in flight', (s) => num(s.inFlight, 0)],
  ['errors', (s) => num(s.errors, 0)]
]

/** Most rows the markdown table shows; longer runs show every k-th sample under load (the JSON has all). */
const MAX_ROWS = 60

function num (n, digits) {
  return Number.isFinite(n) ? n.toFixed(digits) : '–'
}

function table (headers, rows) {
  return [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
}

export function samplesTable (samples) {
  const t0 = samples[0]?.at ?? 0
  let shown = samples
  if (samples.length > MAX_ROWS) {
    const step = Math.ceil(samples.length / MAX_ROWS)
    shown = samples.filter((s, i) => i % step === 0 || s.phase === 'idle' || s.phase === 'drained' || i === samples.length - 1)
  }
  return table(SAMPLE_COLUMNS.map(([h]) => h), shown.map((s) => SAMPLE_COLUMNS.map(([, render]) => render(s, t0))))
}

export function renderMarkdown ({ options, settings, machine, tally, verdict, samples, log, upstream, files }) {
  const lines = []
  lines.push(`# Soak run: ${verdict.pass ? 'PASS' : 'FAIL'}`, '')
  lines.push(`${new Date(settings.startedAt).toISOString()} · ${options.smoke ? 'smoke' : 'full'} mode · ${settings.durationS} s of traffic at ${options.rate}/s (at most ${options.concurrency} in flight) · seed ${options.seed} · node ${machine.node} · ${machine.cpus} CPUs, load ${machine.loadStart} → ${machine.loadEnd}`, '')
  if (!verdict.pass) lines.push(`**Failed:** ${verdict.failed.join('; ')}`, '')
  lines.push(`Gateway: \`node dist/src/cli.js\` with ${Object.entries(settings.gatewayEnv).map(([k, v]) => `\`${k}=${v}\``).join(' ')}. Rerun with \`node soak/run.mjs${options.smoke ? ' --smoke' : ''} --duration ${settings.durationS}s --rate ${options.rate} --seed ${options.seed}\`.`, '')

  lines.push('## Checks', '')
  lines.push(table(['check', 'result', 'evidence'], verdict.checks.map((c) => [c.name, c.pass ? 'pass' : c.advisory ? 'advisory: over the limit' : '**FAIL**', c.detail])))
  if (!options.judgeTrend) lines.push('', '_Growth trend reported, not judged (--smoke or --no-trend): a few seconds of samples cannot tell a leak from warm-up._')
  lines.push('')

  lines.push('## Traffic', '')
  const kindRows = Object.entries(KIND_DESCRIPTIONS).map(([kind, what]) => {
    const k = tally.kinds[kind] ?? { started: 0, ok: 0, failed: 0 }
    return [kind, String(k.started), String(k.ok), String(k.failed), what]
  })
  lines.push(table(['kind', 'started', 'ok', 'failed', 'what it does'], kindRows), '')
  lines.push(`${tally.httpRequests.toLocaleString('en-US')} HTTP requests and ${tally.webSockets} WebSockets through the gateway; ${tally.bytesVerified.toLocaleString('en-US')} response bytes compared with the upstream's; ${tally.shed} arrivals shed. ` +
    `Upstream-side: ${upstream.httpRequests} requests, ${upstream.webSocketTurns} WebSocket turns, ${Object.keys(upstream.httpClosedEarly).length + Object.keys(upstream.webSocketClosedEarly).length} closed early by the gateway, ${upstream.httpDestroyed} broken on purpose. ` +
    `Mid-stream cuts: ${tally.cutStreams.count}, the clients got ${tally.cutStreams.bytesReceived.toLocaleString('en-US')} of the ${tally.cutStreams.bytesBeforeCut.toLocaleString('en-US')} bytes sent before the cuts.`, '')
  if (Object.keys(tally.errors).length > 0) {
    lines.push('### Unexpected outcomes', '')
    for (const [kind, e] of Object.entries(tally.errors)) {
      lines.push(`- **${kind}** ×${e.count}`)
      for (const example of e.examples) lines.push(`  - ${example.split('\n')[0]}`)
    }
    lines.push('')
  }

  lines.push('## Samples', '')
  lines.push(`Every ${options.sampleMs / 1000} s: RSS and fds from /proc/PID, the rest from the gateway's /metrics (heap: \`nodejs_heap_size_used_bytes\`; handles: \`nodejs_active_handles_total\`; lag: \`nodejs_eventloop_lag_p99/max_seconds\` since the previous scrape; series: the gateway's own series in /metrics, runtime families left out). \`idle\` is before traffic, \`drained\` after it stopped, in-flight exchanges ended and idle connections closed.`, '')
  lines.push(samplesTable(samples), '')

  lines.push('## Gateway log', '')
  lines.push(`Request lines by how they ended: ${Object.entries(log.endedBy).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}. Upstream failure codes: ${Object.entries(log.upstreamErrors).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}.`)
  const warnings = Object.entries(log.warnings)
  lines.push(warnings.length === 0 ? 'No line at warn or above.' : `At warn or above: ${warnings.map(([k, w]) => `${k} ×${w.count}`).join('; ')}.`)
  if (log.shutdowns.length > 0) lines.push(`Shutdowns: ${log.shutdowns.map((s) => `${s.signal} at ${s.time}`).join(', ')}.`)
  if (log.other.count > 0) lines.push(`Non-JSON lines (${log.other.count}): ${log.other.examples.map((e) => `\`${e}\``).join(', ')}`)
  lines.push('')
  lines.push(`Files: ${files.join(', ')}.`, '')
  return lines.join('\n')
}

const PANELS = [
  ['rssMb', 'RSS MB'],
  ['heapUsedMb', 'V8 heap used MB'],
  ['fds', 'open fds'],
  ['activeStreams', 'active streams'],
  ['lagP99Ms', 'event-loop lag p99 ms'],
  ['finishedPerS', 'exchanges done/s']
]

const PHASE_FILL = { 'warm-up': '#f3f3f3', middle: '#e8f0fb', last: '#fbeee8' }

/** Small multiples of the main series over time, the phases shaded. */
export function renderSvg (samples, title) {
  const width = 960
  const panelHeight = 120
  const left = 70
  const right = 20
  const top = 40
  const gap = 30
  const height = top + PANELS.length * (panelHeight + gap)
  const t0 = samples[0]?.at ?? 0
  const tMax = Math.max(1, (samples.at(-1)?.at ?? 1) - t0)
  const x = (s) => left + ((s.at - t0) / tMax) * (width - left - right)
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${left}" y="20" font-size="14">${escape(title)}</text>`]
  PANELS.forEach(([key, label], p) => {
    const y0 = top + p * (panelHeight + gap)
    const values = samples.map((s) => s[key]).filter(Number.isFinite)
    const min = Math.min(0, ...values)
    const max = Math.max(1, ...values) * 1.05
    const y = (v) => y0 + panelHeight - ((v - min) / (max - min)) * panelHeight
    for (const phase of Object.keys(PHASE_FILL)) {
      const inPhase = samples.filter((s) => s.phase === phase)
      if (inPhase.length === 0) continue
      parts.push(`<rect x="${x(inPhase[0]).toFixed(1)}" y="${y0}" width="${Math.max(1, x(inPhase.at(-1)) - x(inPhase[0])).toFixed(1)}" height="${panelHeight}" fill="${PHASE_FILL[phase]}"/>`)
    }
    parts.push(`<rect x="${left}" y="${y0}" width="${width - left - right}" height="${panelHeight}" fill="none" stroke="#999"/>`)
    parts.push(`<text x="${left + 4}" y="${y0 + 12}">${escape(label)}</text>`)
    parts.push(`<text x="${left - 4}" y="${y0 + 10}" text-anchor="end">${max.toFixed(max < 10 ? 1 : 0)}</text>`)
    parts.push(`<text x="${left - 4}" y="${y0 + panelHeight}" text-anchor="end">${min.toFixed(0)}</text>`)
    const points = samples.filter((s) => Number.isFinite(s[key])).map((s) => `${x(s).toFixed(1)},${y(s[key]).toFixed(1)}`)
    if (points.length > 0) parts.push(`<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="${points.join(' ')}"/>`)
  })
  parts.push(`<text x="${width - right}" y="${height - 8}" text-anchor="end">seconds: 0 – ${(tMax / 1000).toFixed(0)} · shaded: warm-up (grey), middle third (blue), last third (red)</text>`)
  parts.push('</svg>')
  return parts.join('\n')
}

function escape (text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;')
}

/** Converts the SVG to a PNG with rsvg-convert or ImageMagick when one is installed; returns the PNG path or undefined. */
export function convertToPng (svgFile) {
  const png = svgFile.replace(/\.svg$/, '.png')
  for (const [command, args] of [['rsvg-convert', ['-o', png, svgFile]], ['convert', [svgFile, png]]]) {
    const result = spawnSync(command, args, { stdio: 'ignore', timeout: 30_000 })
    if (result.error === undefined && result.status === 0) return png
  }
  return undefined
}
