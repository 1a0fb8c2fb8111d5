/**
 * The built-in sessions page, served by the gateway itself: plain HTML, a little script and
 * hand-drawn SVG, no build step and nothing from a CDN. A sign-in form for ADMIN_TOKEN; the
 * session list (newest activity first, filtered by id, in pages) under the overall cache hit
 * ratio per minute (/gateway/cache-history); a session's own view (`#session=<id>`) with its
 * timeline of input vs cached tokens per call, misses marked with their reason, and its call
 * table (/gateway/sessions/{id}/requests). Every value is inserted as text, never as HTML.
 */
export const ADMIN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>session-gateway · sessions</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem 2rem; color: #1d1d1f; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; } h2 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; word-break: break-all; }
  table { border-collapse: collapse; width: 100%; margin-top: 0.5rem; }
  th, td { text-align: right; padding: 0.25rem 0.5rem; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; font-family: ui-monospace, monospace; word-break: break-all; }
  #error { color: #b00; min-height: 1.2em; }
  svg { border: 1px solid #eee; background: #fafafa; display: block; }
  .miss { color: #c0392b; } .hit { color: #0a7d55; } .partial { color: #b7791f; }
  button.link { background: none; border: 0; color: #0645ad; cursor: pointer; padding: 0; font: inherit; text-align: left; }
  .bar { display: flex; gap: 0.6rem; align-items: center; margin: 0.6rem 0; }
  .legend span { margin-right: 1rem; font-size: 0.85rem; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<h1>session-gateway · sessions</h1>
<p id="error"></p>
<form id="signin" hidden>
  <label>Admin token <input id="token" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
<main id="list-view" hidden>
  <p>Cache hit ratio per minute, all sessions (cached ÷ input tokens, this gateway process):</p>
  <svg id="ratio-chart" width="720" height="90" viewBox="0 0 720 90" role="img" aria-label="cache hit ratio per minute"></svg>
  <div class="bar">
    <input id="filter" placeholder="filter by session id" size="40">
    <button id="prev" type="button">‹ newer</button><span id="page-info"></span><button id="next" type="button">older ›</button>
  </div>
  <table>
    <thead><tr><th>session</th><th>requests</th><th>input</th><th>cached</th><th>output</th><th>cache hit ratio</th><th>upstream</th><th>last seen</th></tr></thead>
    <tbody id="sessions"></tbody>
  </table>
</main>
<main id="session-view" hidden>
  <button id="back" class="link" type="button">‹ all sessions</button>
  <h2 id="session-title"></h2>
  <p class="legend"><span><b style="color:#9aa5b1">▮</b> input tokens</span><span class="hit">▮ cached tokens</span><span class="miss">● miss, with its reason</span></p>
  <svg id="timeline" width="720" height="220" viewBox="0 0 720 220" role="img" aria-label="input and cached tokens per call"></svg>
  <table>
    <thead><tr><th>time</th><th>model</th><th>upstream</th><th>status</th><th>ttfb ms</th><th>duration ms</th><th>input</th><th>cached</th><th>output</th><th>reasoning</th><th>cache</th><th>miss reason</th></tr></thead>
    <tbody id="calls"></tbody>
  </table>
</main>
<script>
'use strict'
const PAGE = 50
const SVG = 'http://www.w3.org/2000/svg'
const $ = (id) => document.getElementById(id)
let token = sessionStorage.getItem('gateway-admin-token') || ''
let offset = 0
let sessions = []

class Unauthorized extends Error {}

async function api (path) {
  const res = await fetch(path, { headers: token ? { authorization: 'Bearer ' + token } : {} })
  if (res.status === 401) throw new Unauthorized()
  if (!res.ok) throw new Error(path + ': ' + res.status)
  return await res.json()
}

function cell (text, className) {
  const td = document.createElement('td')
  td.textContent = text === null || text === undefined ? '–' : String(text)
  if (className) td.className = className
  return td
}

function svgEl (name, attrs, text) {
  const el = document.createElementNS(SVG, name)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

const percent = (r) => (r * 100).toFixed(1) + ' %'

function drawRatio (minutes) {
  const chart = $('ratio-chart')
  chart.replaceChildren(svgEl('line', { x1: 0, y1: 85, x2: 720, y2: 85, stroke: '#ccc' }))
  const step = 720 / Math.max(1, minutes.length)
  minutes.forEach((m, i) => {
    const ratio = m.input_tokens === 0 ? 0 : m.cached_tokens / m.input_tokens
    const h = Math.max(1, ratio * 80)
    const bar = svgEl('rect', { class: 'ratio', x: i * step + 1, y: 85 - h, width: Math.max(1, step - 2), height: h, fill: '#0a7d55' })
    bar.append(svgEl('title', {}, m.minute + ': ' + percent(ratio) + ' of ' + m.input_tokens + ' input tokens, ' + m.requests + ' calls'))
    chart.append(bar)
  })
}

function drawSessions () {
  const filter = $('filter').value.trim()
  const rows = $('sessions')
  rows.replaceChildren()
  for (const s of sessions) {
    if (filter && !s.id.includes(filter)) continue
    const open = document.createElement('button')
    open.className = 'link'
    open.type = 'button'
    open.textContent = s.id
    open.addEventListener('click', () => { location.hash = 'session=' + encodeURIComponent(s.id) })
    const first = document.createElement('td')
    first.append(open)
    const tr = document.createElement('tr')
    tr.append(first, cell(s.requests), cell(s.input_tokens), cell(s.cached_tokens), cell(s.output_tokens),
      cell(percent(s.cache_hit_ratio)), cell(s.upstream ?? null), cell(new Date(s.last_seen).toLocaleString()))
    rows.append(tr)
  }
}

async function showList () {
  const [page, history] = await Promise.all([api('sessions?limit=' + PAGE + '&offset=' + offset), api('cache-history')])
  sessions = page.data
  $('page-info').textContent = page.total === 0 ? 'no sessions' : (offset + 1) + '–' + (offset + page.data.length) + ' of ' + (page.total_approximate ? 'about ' : '') + page.total
  $('prev').disabled = offset === 0
  $('next').disabled = offset + PAGE >= page.total
  drawRatio(history.data)
  drawSessions()
  show('list-view')
}

function drawTimeline (calls) {
  const chart = $('timeline')
  chart.replaceChildren(svgEl('line', { x1: 40, y1: 190, x2: 720, y2: 190, stroke: '#ccc' }))
  const max = Math.max(1, ...calls.map((c) => c.input_tokens))
  chart.append(svgEl('text', { x: 2, y: 20, 'font-size': 10, fill: '#666' }, String(max)), svgEl('text', { x: 2, y: 190, 'font-size': 10, fill: '#666' }, '0'))
  const step = 680 / Math.max(1, calls.length)
  const y = (tokens) => 190 - (tokens / max) * 170
  calls.forEach((c, i) => {
    const x = 40 + i * step + step / 2
    const point = svgEl('g', { class: 'point', 'data-cache': c.cache })
    point.append(svgEl('title', {}, c.time + ' · ' + c.cache + (c.miss_reason ? ' (' + c.miss_reason + ')' : '') + ' · input ' + c.input_tokens + ', cached ' + c.cached_tokens))
    point.append(svgEl('rect', { x: x - step * 0.35, y: y(c.input_tokens), width: step * 0.35, height: 190 - y(c.input_tokens), fill: '#9aa5b1' }))
    point.append(svgEl('rect', { x, y: y(c.cached_tokens), width: step * 0.35, height: 190 - y(c.cached_tokens), fill: '#0a7d55' }))
    if (c.cache === 'miss') {
      point.append(svgEl('circle', { class: 'miss-mark', cx: x, cy: 200, r: 4, fill: '#c0392b' }))
      point.append(svgEl('text', { class: 'miss-reason', x, y: 214, 'font-size': 9, 'text-anchor': 'middle', fill: '#c0392b' }, c.miss_reason))
    }
    chart.append(point)
  })
}

async function showSession (id) {
  const page = await api('sessions/' + encodeURIComponent(id) + '/requests')
  $('session-title').textContent = 'session ' + id
  const calls = page.data.slice().reverse() // oldest first, left to right
  drawTimeline(calls)
  const rows = $('calls')
  rows.replaceChildren()
  for (const c of page.data) {
    const tr = document.createElement('tr')
    tr.append(cell(new Date(c.time).toLocaleString()), cell(c.model), cell(c.upstream), cell(c.error ? c.status + ' ' + c.error : c.status), cell(c.ttfb_ms), cell(c.duration_ms),
      cell(c.input_tokens), cell(c.cached_tokens), cell(c.output_tokens), cell(c.reasoning_tokens), cell(c.cache, c.cache), cell(c.miss_reason, 'miss'))
    rows.append(tr)
  }
  show('session-view')
}

function show (view) {
  for (const id of ['signin', 'list-view', 'session-view']) $(id).hidden = id !== view
}

async function route () {
  const match = /^#session=(.*)$/.exec(location.hash)
  try {
    if (match) await showSession(decodeURIComponent(match[1]))
    else await showList()
    $('error').textContent = ''
  } catch (err) {
    if (err instanceof Unauthorized) show('signin')
    else $('error').textContent = 'loading failed: ' + err.message
  }
}

$('signin').addEventListener('submit', (event) => {
  event.preventDefault()
  token = $('token').value.trim()
  sessionStorage.setItem('gateway-admin-token', token)
  route()
})
$('filter').addEventListener('input', drawSessions)
$('prev').addEventListener('click', () => { offset = Math.max(0, offset - PAGE); route() })
$('next').addEventListener('click', () => { offset += PAGE; route() })
$('back').addEventListener('click', () => { location.hash = '' })
window.addEventListener('hashchange', route)
route()
setInterval(() => { if (!$('signin').hidden || document.hidden) return; route() }, 10000)
</script>
</body>
</html>
`
