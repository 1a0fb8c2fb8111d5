/**
 * The gateway is the only reader of the `OTEL_*` variables: the real CLI, started with them in
 * its environment (where the OpenTelemetry packages would look too), in front of a real OTLP
 * receiver on loopback. What the exporter sends is what the gateway read and checked; a value
 * it refuses stops the start, naming the variable; one it does not honour changes nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js'
import { startMockUpstream } from '../support/mock-upstream.js'
import { needs } from '../support/needs.js'
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan, type ReceiverTls } from '../support/otlp-receiver.js'
import { makeTlsFiles } from '../support/redis-topologies.js'

const TOKEN = 'traces-token-5d1e'

async function receiver (t: Test, tls?: ReceiverTls): Promise<OtlpReceiver> {
  const started = await startOtlpReceiver({ tls })
  t.teardown(async () => await started.close())
  return started
}

/** The CLI in front of a mock upstream, exporting to `endpoint` with `env`; killed at teardown. */
async function startCli (t: Test, endpoint: string, env: Record<string, string>): Promise<GatewayProcess> {
  const upstream = await startMockUpstream()
  t.teardown(async () => await upstream.close())
  return startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '20', ...env })
}

/**
 * Sends one request through `cli` and resolves with its server span (`isIt` tells it) and the
 * index of its export once the receiver has it, or rejects as soon as the gateway logs that
 * exporting failed (no waiting out a timer).
 */
async function exportOfOneRequest (cli: GatewayProcess, otlp: OtlpReceiver, session: string, isIt = (span: ReceivedSpan): boolean => span.attributes['session.id'] === session): Promise<{ exportIndex: number, attributes: Record<string, unknown> }> {
  const port = await cli.port()
  const res = await request(`http://127.0.0.1:${port}/v1/responses`, { method: 'POST', body: '{"model":"gpt-test"}', headers: { 'session-id': session } })
  await res.body.dump()
  const failed = cli.waitForLog((line) => line.msg === 'tracing: exporting spans failed; they are dropped')
    .then((line) => { throw new Error(`the export failed: ${String(line.err)}`) })
  failed.catch(() => {}) // raced below; once spans arrive, a later failure is not this test's
  const isServer = (span: ReceivedSpan): boolean => span.kind === SPAN_KIND.server && isIt(span)
  const spans = await Promise.race([otlp.waitForSpans((all) => all.some(isServer)), failed])
  const server = spans.find(isServer)!
  const exportIndex = otlp.exports.findIndex((sent) => sent.body.includes(session))
  return { exportIndex, attributes: server.attributes }
}

/** Resolves with how the start ended: the exit code, or 'listening' if it started instead. */
async function startOutcome (cli: GatewayProcess): Promise<number | null | 'listening'> {
  return await Promise.race([cli.exited.then(({ code }) => code), cli.port().then(() => 'listening' as const, async () => await new Promise<never>(() => {}))])
}

// Regression: the exporter merged OTEL_EXPORTER_OTLP_HEADERS, read by itself, into the headers
// it was given, so with OTEL_EXPORTER_OTLP_TRACES_HEADERS set (the one the gateway reads) the
// generic ones went to the collector too, unchecked.
t.test('regression: with OTEL_EXPORTER_OTLP_TRACES_HEADERS set, the generic OTEL_EXPORTER_OTLP_HEADERS are not sent', async (t) => {
  const otlp = await receiver(t)
  const cli = await startCli(t, otlp.url, { OTEL_EXPORTER_OTLP_TRACES_HEADERS: `x-otlp-token=${TOKEN}`, OTEL_EXPORTER_OTLP_HEADERS: 'x-fleet-header=fleet-value' })
  const { exportIndex } = await exportOfOneRequest(cli, otlp, 'headers-traces-only')
  const headers = otlp.exports[exportIndex]!.headers
  t.equal(headers['x-otlp-token'], TOKEN, 'the traces headers are sent')
  t.equal(headers['x-fleet-header'], undefined, 'the generic ones are not')
})

// Regression: a malformed generic value (a line break once decoded) made every export fail
// while the gateway, which reads the traces-specific variable, started as if all was well.
t.test('regression: a malformed generic OTEL_EXPORTER_OTLP_HEADERS beside the traces one is not read, and exports go through', async (t) => {
  const otlp = await receiver(t)
  const cli = await startCli(t, otlp.url, { OTEL_EXPORTER_OTLP_TRACES_HEADERS: `x-otlp-token=${TOKEN}`, OTEL_EXPORTER_OTLP_HEADERS: 'x-broken=line%0Abreak' })
  const { exportIndex } = await exportOfOneRequest(cli, otlp, 'headers-malformed-generic')
  t.equal(otlp.exports[exportIndex]!.headers['x-otlp-token'], TOKEN)
  t.equal(otlp.exports[exportIndex]!.headers['x-broken'], undefined)
})

t.test('a malformed OTEL_EXPORTER_OTLP_HEADERS, the one read, stops the start naming it, and its value is not echoed', async (t) => {
  const cli = await startCli(t, 'http://127.0.0.1:9/', { OTEL_EXPORTER_OTLP_HEADERS: 'x-token=s3cr3t%0Avalue' })
  t.equal(await startOutcome(cli), 2)
  t.match(cli.stderr(), /^session-gateway: config OTEL_EXPORTER_OTLP_HEADERS: the value of x-token holds a control character\n$/)
  t.notMatch(cli.stderr(), /s3cr3t/)
})

// Regression: the compression variables were the exporter's to read; a value it did not know
// was dropped with a warning to a logger nobody registered, and the gateway started.
t.test('regression: an OTEL_EXPORTER_OTLP_COMPRESSION the gateway does not know stops the start naming it', async (t) => {
  const cli = await startCli(t, 'http://127.0.0.1:9/', { OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' })
  t.equal(await startOutcome(cli), 2)
  t.match(cli.stderr(), /^session-gateway: config OTEL_EXPORTER_OTLP_COMPRESSION: expected one of none, gzip, got "zstd"\n$/)
})

t.test('compression: gzip when asked, the traces variable over the generic one', async (t) => {
  const otlp = await receiver(t)
  const gzipped = await startCli(t, otlp.url, { OTEL_EXPORTER_OTLP_COMPRESSION: 'none', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip' })
  const first = await exportOfOneRequest(gzipped, otlp, 'compressed')
  t.equal(otlp.exports[first.exportIndex]!.headers['content-encoding'], 'gzip')
  gzipped.child.kill('SIGKILL')

  const plain = await startCli(t, otlp.url, { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' })
  const second = await exportOfOneRequest(plain, otlp, 'uncompressed')
  t.equal(otlp.exports[second.exportIndex]!.headers['content-encoding'], undefined)
})

// Regression: the span limit variables were the SDK's to read, unchecked; 2 cut every span to
// its first two attributes.
t.test('regression: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT and OTEL_ATTRIBUTE_COUNT_LIMIT are not honoured', async (t) => {
  const otlp = await receiver(t)
  const cli = await startCli(t, otlp.url, { OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '2', OTEL_ATTRIBUTE_COUNT_LIMIT: '2', OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '3' })
  // The only server span: with the limits honoured it would have lost its session.id.
  const { attributes } = await exportOfOneRequest(cli, otlp, 'span-limits', () => true)
  t.ok(Object.keys(attributes).length > 2, 'every attribute is kept')
  t.equal(attributes['session.id'], 'span-limits', 'values are not cut')
})

t.test('TLS: the collector\'s CA and a client certificate come from the gateway\'s variables', needs('openssl'), async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-otlp-tls-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const files = await makeTlsFiles(dir)
  const [cert, key, ca] = await Promise.all([readFile(files.certFile), readFile(files.keyFile), readFile(files.caFile)])
  const otlp = await receiver(t, { cert, key, ca })
  // The test CA signed the server certificate; it serves as the client's too.
  const tlsEnv = { OTEL_EXPORTER_OTLP_CERTIFICATE: files.caFile, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.certFile, OTEL_EXPORTER_OTLP_CLIENT_KEY: files.keyFile }

  t.test('they are used', async (t) => {
    const cli = await startCli(t, otlp.url, tlsEnv)
    const { exportIndex } = await exportOfOneRequest(cli, otlp, 'over-tls')
    t.equal(otlp.exports[exportIndex]!.clientCertificate, 'localhost', 'the exporter presented the client certificate')
  })

  // Regression: a certificate file the exporter could not read was skipped with a warning
  // nobody saw, and every export then failed on the collector's certificate.
  t.test('regression: a CA file that cannot be read stops the start naming its variable', async (t) => {
    const cli = await startCli(t, otlp.url, { ...tlsEnv, OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'missing.crt') })
    t.equal(await startOutcome(cli), 2)
    t.match(cli.stderr(), /^session-gateway: config OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read .*missing\.crt: ENOENT\n$/)
  })

  t.test('the _TRACES_ form wins: another CA there, and the collector is not trusted', async (t) => {
    const cli = await startCli(t, otlp.url, { ...tlsEnv, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: files.otherCaFile })
    await t.rejects(exportOfOneRequest(cli, otlp, 'untrusted'), /the export failed/)
  })
})
