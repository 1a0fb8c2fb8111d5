import http from 'node:http'
import t from 'tap'
import { startGateway } from '../support/gateway.js'
import { startUpstreamProcesses } from '../support/upstream-process.js'

async function send (base: string, session: string, body: Record<string, unknown> = {}): Promise<{ status: number, text: string, headers: http.IncomingHttpHeaders }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${base}/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'session-id': session } }, (res) => {
      let text = ''
      res.on('data', (c) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode!, text, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ model: 'm', input: 'hi', ...body }))
  })
}

t.test('all down', async (t) => {
  const ups = await startUpstreamProcesses(t, ['a', 'b', 'c'])
  const gateway = await startGateway({ UPSTREAMS: JSON.stringify(ups.map((u) => ({ name: u.name, url: u.url }))) })
  t.teardown(gateway.close)
  console.error(await send(gateway.baseURL, 's1'))
  await Promise.all(ups.map(async (u) => await u.kill()))
  for (let i = 0; i < 5; i++) console.error(await send(gateway.baseURL, 's1'))
  console.error(await (await fetch(gateway.origin + '/readyz')).text())
  console.error(gateway.logs.filter((l) => l.msg !== 'request' || true).slice(-8).map((l) => JSON.stringify(l)).join('\n'))
  await ups[1]!.restart()
  for (let i = 0; i < 3; i++) console.error(await send(gateway.baseURL, 's1'))
  for (let i = 0; i < 3; i++) console.error(await send(gateway.baseURL, 's2'))
  console.error((await (await fetch(gateway.origin + '/metrics')).text()).split('\n').filter((l) => l.includes('upstream') && !l.startsWith('#')).join('\n'))
})
