/**
 * The /gateway/ page in a real browser (Debian's chromium, driven by playwright-core): sign in,
 * see the sessions, open one, see its timeline and a miss reason; a hostile session id is
 * shown as text and never runs. `UPDATE_SCREENSHOT=1` also writes docs/gateway-page.png.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { chromium, type Browser } from 'playwright-core'
import { answerWithChosenUsage, modelCall, OTHER_TOOLS } from '../support/cache-calls.js'
import { startGatewayWithUpstream } from '../support/gateway.js'
import { needs } from '../support/needs.js'

const HOSTILE = '<img/src=x/onerror=window.__pwned=1>'
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'gateway-page.png')

t.test('the sessions page: sign in, the list, a session\'s timeline with its miss reasons, hostile ids as text', needs('chromium'), async (t) => {
  // A call whose body asks to be refused gets a 200 stream whose first event is an error.
  const { gateway } = await startGatewayWithUpstream(t, { ADMIN_TOKEN: 'page-t0k' }, (req, res, raw) => {
    if (!req.body.includes('"refuse-in-stream"')) return answerWithChosenUsage(req, res, raw)
    res.writeHead(200, { 'content-type': 'text/event-stream' }).end('event: error\ndata: {"type":"error","code":"rate_limit_exceeded","message":"slow down"}\n\n')
  })
  const calls: Array<{ usage: [number, number], tools?: unknown[], instructions?: string }> = [
    { usage: [3200, 0] }, { usage: [3900, 3712] }, { usage: [4600, 4480] }, { usage: [5100, 0], tools: OTHER_TOOLS },
    { usage: [5800, 5504], tools: OTHER_TOOLS }, { usage: [6400, 6272], tools: OTHER_TOOLS }, { usage: [7000, 0], tools: OTHER_TOOLS }, { usage: [7600, 6912], tools: OTHER_TOOLS }
  ]
  for (const call of calls) await modelCall(gateway.baseURL, { session: 'codex-run-42', ...call })
  await modelCall(gateway.baseURL, { session: HOSTILE, usage: [2000, 0] })
  await modelCall(gateway.baseURL, { session: HOSTILE, usage: [0, 0], instructions: 'refuse-in-stream' })

  const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless=new'] })
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } })
  const dialogs: string[] = []
  page.on('dialog', (dialog) => { dialogs.push(dialog.message()); void dialog.dismiss() })
  await page.goto(`${gateway.origin}/gateway/`)

  await page.locator('#signin').waitFor({ state: 'visible' })
  await page.fill('#token', 'page-t0k')
  await page.click('#signin button[type=submit]')
  await page.locator('#sessions tr').nth(1).waitFor()
  const ids = await page.locator('#sessions tr td:first-child').allTextContents()
  t.same(ids, [HOSTILE, 'codex-run-42'], 'both sessions, newest activity first, the hostile id as its own text')

  await page.fill('#filter', 'codex')
  t.same(await page.locator('#sessions tr td:first-child').allTextContents(), ['codex-run-42'], 'filtered by id')
  await page.fill('#filter', '')

  await page.getByRole('button', { name: 'codex-run-42' }).click()
  await page.locator('#timeline .point').nth(calls.length - 1).waitFor()
  t.equal(await page.locator('#timeline .point').count(), calls.length, 'a timeline point per call')
  t.same(await page.locator('#timeline .miss-reason').allTextContents(), ['first_request', 'prefix_changed', 'unexplained'], 'misses marked with their reason')
  t.equal(await page.locator('#calls tr').count(), calls.length, 'and the call table')
  if (process.env.UPDATE_SCREENSHOT === '1') await writeFile(SCREENSHOT, await page.screenshot({ fullPage: true }))
  else t.ok((await page.screenshot()).subarray(1, 4).equals(Buffer.from('PNG')), 'a screenshot can be taken')

  await page.click('#back')
  await page.getByRole('button', { name: HOSTILE }).click()
  await page.locator('#timeline .point').first().waitFor()
  t.equal(await page.locator('#session-title').textContent(), `session ${HOSTILE}`, 'its own view names it as text')
  t.same(await page.locator('#calls tr td:nth-child(4)').allTextContents(), ['200 rate_limit_exceeded', '200'], 'a call refused inside its 200 stream shows the error by its status')
  t.equal(await page.locator('img').count(), 0, 'no element was made from the id')
  t.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined, 'its onerror never ran')
  t.same(dialogs, [], 'no prompt() or alert')
})
