/**
 * What tracing costs one exchange, apart from the rest of the gateway:
 *
 *   node bench/tracing/span-cost.mjs [--exchanges N] [--rounds N] [--garbage N] VARIANT…
 *
 * drives the built tracer (dist/src/observe/otel-tracer.js) through the calls one streamed
 * exchange of bench scenario (a) makes (server span, one attempt span, model, id, usage, ends)
 * and prints this process's CPU per exchange. A VARIANT is `stage[:batch[:delayMs[:protocol]]]`:
 * stage `spans` exports to an exporter that drops the batch, `serialize` to one that encodes it
 * as the gateway does (src/observe/recycled-encoding.ts) and drops the bytes, `official` to one that encodes it with the official
 * protobuf serializer instead (src/observe/otlp-span-encoder.ts writes the same bytes), `export` to bench/upstream/otlp-sink.mjs over OTLP/HTTP (default batch
 * 2048, delay 200 ms, protobuf: the bench's settings). Variants alternate round by round in one
 * process; the minimum over rounds is the least disturbed figure on a shared machine.
 * `--garbage N` allocates N short-lived objects per exchange, as the rest of a gateway would.
 * Needs `npm run build`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startProcess, waitForListening } from '../lib/processes.mjs'

const ROOT = join(import.meta.dirname, '..', '..')
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { exchanges: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '5' }, garbage: { type: 'string', default: '0' } }
})
const EXCHANGES = Number(values.exchanges)
const ROUNDS = Number(values.rounds)
const GARBAGE = Number(values.garbage)
/** Exchanges started per macrotask: the batch processor's timer runs between them, as under load. */
const PER_TICK = 50

const { createOtelTracer } = await import(join(ROOT, 'dist/src/observe/otel-tracer.js'))
const { tracingFromEnv } = await import(join(ROOT, 'dist/src/config/tracing-env.js'))
const { JsonTraceSerializer, ProtobufTraceSerializer } = await import('@opentelemetry/otlp-transformer')
const { recycledEncoding } = await import(join(ROOT, 'dist/src/observe/recycled-encoding.js'))

// What bench scenario (a)'s exchanges carry (bench/fixtures/responses-sse.mjs).
const req = { method: 'POST', headers: { host: '127.0.0.1:8080', 'content-type': 'application/json', 'content-length': '128' } }
const session = { id: '01a23481-e881-7626-a041-70987ae85500', source: 'connection' }
const usage = { input: 36, cached: 0, output: 38, reasoning: 0 }
const RESPONSE_ID = 'resp_68b1c0ffee0000000000000000000000000000000000bench'
const target = { upstream: 'default', origin: 'http://127.0.0.1:9000', method: 'POST', path: '/v1/responses' }
const outcome = { status: 200, endedBy: 'complete', ttfbMs: 36.4, bytesOut: 2567 }
let kept

function exchange (tracer) {
  if (GARBAGE > 0) {
    const garbage = []
    for (let i = 0; i < GARBAGE; i++) garbage.push({ i, s: `x${i}` })
    kept = garbage
  }
  const span = tracer.startExchange(req, 'http', '/v1/responses')
  span.admitted(session)
  const attempt = span.startAttempt(target)
  if (attempt.traceHeaders.length !== 2) throw new Error('no traceparent')
  span.responseModel('gpt-4.1-mini')
  span.responseId(RESPONSE_ID)
  span.usage(usage)
  attempt.end(outcome)
  span.end(outcome)
  return span.traceId
}

function parseVariant (text) {
  const [stage, batch = '2048', delay = '200', protocol = 'http/protobuf'] = text.split(':')
  if (!['spans', 'serialize', 'official', 'export'].includes(stage)) throw new Error(`unknown stage ${stage}`)
  return { text, stage, batch, delay, protocol, results: [] }
}

/** An exporter that stops after `stage`; undefined for the real one. */
function stageExporter ({ stage, protocol }) {
  if (stage === 'export') return undefined
  // As the gateway encodes: into a buffer lent to each export, given back when it ends.
  const encoding = recycledEncoding()
  const serializer = protocol === 'http/json' ? JsonTraceSerializer : stage === 'official' ? ProtobufTraceSerializer : encoding.serializer
  return encoding.recycling({
    export (spans, done) {
      if (stage !== 'spans') serializer.serializeRequest(spans)
      done({ code: 0 })
    },
    shutdown: async () => {},
    forceFlush: async () => {}
  })
}

async function measure (variant, sinkOrigin) {
  const config = tracingFromEnv({
    OTEL_EXPORTER_OTLP_ENDPOINT: sinkOrigin,
    OTEL_EXPORTER_OTLP_PROTOCOL: variant.protocol,
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_BSP_MAX_QUEUE_SIZE: '65536',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: variant.batch,
    OTEL_BSP_SCHEDULE_DELAY: variant.delay
  })
  const tracer = await createOtelTracer(config, { exporter: stageExporter(variant) })
  await drive(tracer, 2_000)
  const before = process.cpuUsage()
  await drive(tracer, EXCHANGES)
  await tracer.shutdown(30_000)
  const cpu = process.cpuUsage(before)
  return (cpu.user + cpu.system) / EXCHANGES
}

async function drive (tracer, count) {
  for (let n = 0; n < count; n += PER_TICK) {
    for (let i = 0; i < PER_TICK; i++) exchange(tracer)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

const variants = (positionals.length > 0 ? positionals : ['spans', 'serialize', 'export']).map(parseVariant)
// The sink on port 0, its port read from /proc once it listens: none picked in advance for
// another process to take first, and no fixed wait standing in for its start.
const dir = mkdtempSync(join(tmpdir(), 'bench-span-cost-'))
const sink = startProcess('otlp-sink', process.execPath, [join(ROOT, 'bench/upstream/otlp-sink.mjs'), '0'], {
  env: { PATH: process.env.PATH ?? '' },
  logFile: join(dir, 'otlp-sink.log')
})
try {
  const [sinkOrigin] = await waitForListening(sink)
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(i + round) % variants.length]
      variant.results.push(await measure(variant, sinkOrigin))
    }
  }
} finally {
  await sink.stop()
}
// Kept when the run failed: an error names the sink's log.
rmSync(dir, { recursive: true, force: true })
for (const { text, results } of variants) {
  const sorted = [...results].sort((a, b) => a - b)
  console.log(`${text.padEnd(32)} min ${sorted[0].toFixed(1).padStart(5)}  median ${sorted[Math.floor(sorted.length / 2)].toFixed(1).padStart(5)}  µs CPU / exchange  (${results.map((r) => r.toFixed(1)).join(' ')})`)
}
