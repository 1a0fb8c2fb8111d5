import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../../src/observe/logger.js'
import { logExchange, type ExchangeLogRecord } from '../../../src/observe/request-log.js'

/** A logger whose lines land in `lines`, synchronously. */
function capture (level: 'info' | 'warn' = 'info'): { logger: ReturnType<typeof createLogger>, lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== '')); done() } })
  return { logger: createLogger(level, sink), lines }
}

const base: ExchangeLogRecord = {
  transport: 'http',
  method: 'POST',
  path: '/v1/responses',
  session: { id: 'sess-"quoted"\\and\u2028odd', source: 'header' },
  upstream: 'default',
  attempts: 1,
  durationMs: 12.345,
  outcome: { status: 200, endedBy: 'complete', ttfbMs: 3.21, bytesOut: 2567 }
}

t.test('the request line reads as pino writes the same fields, in the same order', async (t) => {
  const variants: Array<[string, ExchangeLogRecord]> = [
    ['complete', base],
    ['failed after failover, traced', { ...base, attempts: 2, traceId: '0af7651916cd43dd8448eb211c80319c', outcome: { status: 502, endedBy: 'upstream', ttfbMs: -1, bytesOut: 0, failure: { kind: 'connect', code: 'ECONNREFUSED' } } }],
    ['no session, no upstream', { ...base, session: undefined, upstream: undefined }],
    ['stopped by the gateway (a request timeout)', { ...base, outcome: { status: 408, endedBy: 'gateway', ttfbMs: -1, bytesOut: 0, stoppedWith: 'request_timeout' } }]
  ]
  for (const [name, record] of variants) {
    const { logger, lines } = capture()
    logExchange(logger, record)
    const o = record.outcome
    logger.info({
      method: record.method,
      path: record.path,
      status: o.status,
      session: record.session?.id,
      session_source: record.session?.source,
      upstream: record.upstream,
      attempts: record.attempts > 1 ? record.attempts : undefined,
      ttfb_ms: o.ttfbMs < 0 ? null : Math.round(o.ttfbMs * 10) / 10,
      duration_ms: Math.round(record.durationMs * 10) / 10,
      bytes_out: o.bytesOut,
      ended_by: o.endedBy,
      error: o.failure?.code ?? o.stoppedWith,
      trace_id: record.traceId
    }, 'request')
    t.equal(lines.length, 2, name)
    const [fast, pinos] = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    // The time may differ by a millisecond between the two lines; everything else is identical.
    t.match(fast!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${name}: ISO time`)
    delete fast!.time
    delete pinos!.time
    t.same(Object.keys(fast!), Object.keys(pinos!), `${name}: key order`)
    t.same(fast, pinos, `${name}: values`)
  }
})

t.test('no request line below the info level', async (t) => {
  const { logger, lines } = capture('warn')
  logExchange(logger, base)
  t.same(lines, [])
})

/** The first ```json block after `heading` in a Markdown file of the repository, parsed. */
function exampleLine (file: string, heading: string): Record<string, unknown> {
  const text = readFileSync(join(import.meta.dirname, '..', '..', '..', file), 'utf8')
  const after = text.slice(text.indexOf(heading))
  const block = /```json\n(.*)\n```/.exec(after)
  if (block === null) throw new Error(`no json block after ${heading} in ${file}`)
  return JSON.parse(block[1]!) as Record<string, unknown>
}

t.test("the README's example request line has a request line's fields, in order", async (t) => {
  const { logger, lines } = capture()
  logExchange(logger, { ...base, session: { id: 'sess-1', source: 'connection' } })
  const logged = JSON.parse(lines[0]!) as Record<string, unknown>
  t.same(Object.keys(exampleLine('README.md', '## Logs')), Object.keys(logged))
})

t.test("docs/websocket.md's example line has a WebSocket line's fields, in order", async (t) => {
  const { logger, lines } = capture()
  logExchange(logger, {
    ...base,
    transport: 'websocket',
    method: 'GET',
    outcome: { status: 101, endedBy: 'complete', ttfbMs: 12.4, bytesOut: 184220, webSocket: { bytesIn: 25181, closeCode: 1000, closedBy: 'client' } }
  })
  const logged = JSON.parse(lines[0]!) as Record<string, unknown>
  // The page shows the line's own fields; pino's level, time, service and msg are said beside it.
  const own = Object.keys(logged).filter((key) => !['level', 'time', 'service', 'msg'].includes(key))
  t.same(Object.keys(exampleLine('docs/websocket.md', '## Logs and metrics')), own)
})
