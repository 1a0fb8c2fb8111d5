/**
 * The built-in sessions page: plain HTML and a little script, no build step. It polls
 * /gateway/sessions, shows the table and totals, and plots the overall cache hit ratio over
 * the time the page has been open.
 */
export const ADMIN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>session-gateway · sessions</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  .totals { display: flex; gap: 2rem; margin-bottom: 1rem; }
  .totals div { font-size: 0.8rem; color: #666; }
  .totals b { display: block; font-size: 1.4rem; color: #1d1d1f; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: right; padding: 0.3rem 0.6rem; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; font-family: ui-monospace, monospace; }
  #error { color: #b00; }
  svg { border: 1px solid #eee; background: #fafafa; }
</style>
</head>
<body>
<h1>session-gateway · sessions</h1>
<p id="error"></p>
<div class="totals">
  <div>sessions<b id="t-sessions">–</b></div>
  <div>requests<b id="t-requests">–</b></div>
  <div>input tokens<b id="t-input">–</b></div>
  <div>cached tokens<b id="t-cached">–</b></div>
  <div>output tokens<b id="t-output">–</b></div>
  <div>cache hit ratio<b id="t-ratio">–</b></div>
</div>
<p>Cache hit ratio while this page is open:</p>
<svg id="chart" width="600" height="80" viewBox="0 0 600 80" role="img" aria-label="cache hit ratio over time"><polyline id="line" fill="none" stroke="#0a7" stroke-width="2" points=""/></svg>
<table>
  <thead><tr><th>session</th><th>requests</th><th>input</th><th>cached</th><th>output</th><th>reasoning</th><th>cache hit ratio</th><th>upstream</th><th>last seen</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script>
  const history = []
  const params = new URLSearchParams(location.hash.slice(1))
  let token = params.get('token') || sessionStorage.getItem('gateway-admin-token') || ''
  const percent = (r) => (r * 100).toFixed(1) + ' %'
  const cell = (text) => { const td = document.createElement('td'); td.textContent = text; return td }
  async function refresh () {
    const res = await fetch('sessions?limit=200', { headers: token ? { authorization: 'Bearer ' + token } : {} })
    if (res.status === 401) {
      token = prompt('Admin token') || ''
      sessionStorage.setItem('gateway-admin-token', token)
      return
    }
    const page = await res.json()
    const sum = { requests: 0, input: 0, cached: 0, output: 0 }
    const rows = document.getElementById('rows')
    rows.replaceChildren()
    for (const s of page.data) {
      sum.requests += s.requests; sum.input += s.input_tokens; sum.cached += s.cached_tokens; sum.output += s.output_tokens
      const tr = document.createElement('tr')
      tr.append(cell(s.id), cell(s.requests), cell(s.input_tokens), cell(s.cached_tokens), cell(s.output_tokens),
        cell(s.reasoning_tokens), cell(percent(s.cache_hit_ratio)), cell(s.upstream ?? ''), cell(new Date(s.last_seen).toLocaleTimeString()))
      rows.append(tr)
    }
    const ratio = sum.input === 0 ? 0 : sum.cached / sum.input
    document.getElementById('t-sessions').textContent = page.total
    document.getElementById('t-requests').textContent = sum.requests
    document.getElementById('t-input').textContent = sum.input
    document.getElementById('t-cached').textContent = sum.cached
    document.getElementById('t-output').textContent = sum.output
    document.getElementById('t-ratio').textContent = percent(ratio)
    history.push(ratio)
    if (history.length > 120) history.shift()
    const step = 600 / Math.max(1, history.length - 1)
    document.getElementById('line').setAttribute('points', history.map((r, i) => (i * step) + ',' + (78 - r * 76)).join(' '))
  }
  function tick () {
    refresh().then(() => { document.getElementById('error').textContent = '' },
      (err) => { document.getElementById('error').textContent = 'refresh failed: ' + err.message })
  }
  tick()
  setInterval(tick, 5000)
</script>
</body>
</html>
`
