import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { ConfigError } from '../../../src/config/settings.js'
import { tracingFromEnv } from '../../../src/config/tracing-env.js'
import { needs } from '../../support/needs.js'
import { CERTIFICATE_PEM } from '../../support/pem-fixtures.js'
import { makeTlsFiles } from '../../support/redis-topologies.js'

function refuses (t: Test, env: Record<string, string>, key: string, hidden?: RegExp): void {
  t.throws(() => tracingFromEnv(env), ConfigError, key)
  try {
    tracingFromEnv(env)
  } catch (err) {
    t.equal((err as ConfigError).key, key)
    if (hidden !== undefined) t.notMatch((err as Error).message, hidden, 'a secret is not echoed')
  }
}

t.test('tracing is off unless an endpoint is set, and the defaults are the spec\'s', async (t) => {
  const off = loadConfig({}).tracing
  t.equal(off.enabled, false)
  const on = tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })
  t.match(on, {
    enabled: true,
    endpoint: 'http://collector:4318/v1/traces',
    protocol: 'http/protobuf',
    headers: {},
    serviceName: 'session-gateway',
    sampler: 'parentbased_always_on',
    samplerRatio: 1,
    batch: { scheduledDelayMillis: 5000, exportTimeoutMillis: 30_000, maxQueueSize: 2048, maxExportBatchSize: 512 }
  })
  t.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).enabled, false, 'OTEL_SDK_DISABLED wins')
  t.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }).enabled, false, 'empty counts as unset')
})

t.test('endpoints: the traces one as is, the base one with /v1/traces appended', async (t) => {
  t.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example/otlp/' }).endpoint, 'https://c.example/otlp/v1/traces')
  t.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t.example/custom' }).endpoint, 'https://t.example/custom')
  refuses(t, { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT')
  refuses(t, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
})

t.test('protocol, headers, resource attributes, sampler and batch settings', async (t) => {
  const config = tracingFromEnv({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20tok,x-tenant = acme ',
    OTEL_SERVICE_NAME: 'edge-gateway',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.namespace=ai',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_BSP_MAX_QUEUE_SIZE: '4096'
  })
  t.equal(config.protocol, 'http/json')
  t.same(config.headers, { authorization: 'Bearer tok', 'x-tenant': 'acme' })
  t.equal(config.serviceName, 'edge-gateway')
  t.same(config.resourceAttributes, { 'deployment.environment': 'prod', 'service.namespace': 'ai' })
  t.equal(config.sampler, 'parentbased_traceidratio')
  t.equal(config.samplerRatio, 0.25)
  t.match(config.batch, { scheduledDelayMillis: 200, maxQueueSize: 4096 })
  t.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).protocol, 'http/protobuf', 'the traces-specific variable wins')
})

// Regression: with OTEL_SERVICE_NAME unset, the gateway's default 'session-gateway' replaced a
// service.name given in OTEL_RESOURCE_ATTRIBUTES, which the spec has win over any default.
t.test('service.name: OTEL_SERVICE_NAME, else the one in OTEL_RESOURCE_ATTRIBUTES, else session-gateway', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  t.equal(tracingFromEnv({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=edge,team=ai' }).serviceName, 'edge')
  t.equal(tracingFromEnv({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=edge', OTEL_SERVICE_NAME: 'named' }).serviceName, 'named', 'OTEL_SERVICE_NAME wins')
  t.equal(tracingFromEnv({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'service.name=' }).serviceName, 'session-gateway', 'an empty one is no name')
  t.equal(tracingFromEnv({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'team=ai' }).serviceName, 'session-gateway')
})

t.test('with tracing on, invalid values are config errors naming the variable, and secrets are not echoed', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_PROTOCOL')
  refuses(t, { ...on, OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER')
  refuses(t, { ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }, 'OTEL_TRACES_SAMPLER_ARG')
  refuses(t, { ...on, OTEL_BSP_SCHEDULE_DELAY: '-1' }, 'OTEL_BSP_SCHEDULE_DELAY')
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '0' }, 'OTEL_EXPORTER_OTLP_TIMEOUT')
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_HEADERS: 'tok-s3cr3t-no-equals' }, 'OTEL_EXPORTER_OTLP_HEADERS', /s3cr3t/)
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_HEADERS: 'x=%E0%A4%A' }, 'OTEL_EXPORTER_OTLP_HEADERS')
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_HEADERS: 'x=a%0Ab' }, 'OTEL_EXPORTER_OTLP_HEADERS')
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_HEADERS: 'bad key=s3cr3t' }, 'OTEL_EXPORTER_OTLP_HEADERS', /s3cr3t/)
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-token=caf%C3%A9%E2%82%AC' }, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')
})

// Regression: a batch size above the queue size was passed to the BatchSpanProcessor, which cuts
// it to the queue size with a diag warning nobody sees (no diag logger is registered).
t.test('OTEL_BSP_MAX_EXPORT_BATCH_SIZE above the queue size is refused; its default follows a smaller queue', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  refuses(t, { ...on, OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '200' }, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE')
  t.throws(() => tracingFromEnv({ ...on, OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4096' }), /4096 is above OTEL_BSP_MAX_QUEUE_SIZE 2048 \(its default\)/)
  t.match(tracingFromEnv({ ...on, OTEL_BSP_MAX_QUEUE_SIZE: '100' }).batch, { maxQueueSize: 100, maxExportBatchSize: 100 }, 'the default 512 is cut to the queue')
  t.match(tracingFromEnv({ ...on, OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100' }).batch, { maxQueueSize: 100, maxExportBatchSize: 100 }, 'equal is fine')
  t.match(tracingFromEnv(on).batch, { maxQueueSize: 2048, maxExportBatchSize: 512 }, 'the defaults')
})

t.test('regression: with tracing off (no endpoint, or OTEL_SDK_DISABLED=true) no other OTEL_* value is read, so one meant for another SDK stops nothing', async (t) => {
  const foreign = { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_SAMPLER: 'xray', OTEL_TRACES_SAMPLER_ARG: 'abc', OTEL_BSP_SCHEDULE_DELAY: '-1', OTEL_EXPORTER_OTLP_HEADERS: 'junk' }
  t.equal(tracingFromEnv(foreign).enabled, false, 'no endpoint')
  t.equal(tracingFromEnv({ ...foreign, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).enabled, false, 'the SDK disabled')
  t.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url', OTEL_SDK_DISABLED: 'TRUE' }).enabled, false, 'even the endpoint goes unread')
  t.equal(loadConfig({ env: foreign }).tracing.enabled, false, 'and the gateway starts')
})

t.test('the exporter\'s timeout: the traces variable, else the generic one, else the spec\'s 10 s', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  t.equal(tracingFromEnv(on).exporterTimeoutMillis, 10_000)
  t.equal(tracingFromEnv({ ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '2000' }).exporterTimeoutMillis, 2000)
  t.equal(tracingFromEnv({ ...on, OTEL_EXPORTER_OTLP_TIMEOUT: '2000', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '3000' }).exporterTimeoutMillis, 3000)
  t.equal(tracingFromEnv({ ...on, OTEL_BSP_EXPORT_TIMEOUT: '7000' }).exporterTimeoutMillis, 10_000, 'OTEL_BSP_EXPORT_TIMEOUT is the batch processor\'s, not the exporter\'s')
})

// Regression: OTEL_RESOURCE_ATTRIBUTES keys were kept as written, so `team%2Cunit=a` (the spec
// has `,` and `=` in keys percent-encoded) became the attribute `team%2Cunit`, and a key that
// does not decode went through as it was while a value that does not was refused.
t.test('regression: OTEL_RESOURCE_ATTRIBUTES keys are percent-decoded like values, and a key that does not decode is refused', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  t.same(tracingFromEnv({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'team%2Cunit=a%2Cb, x%3Dy = 1 ,caf%C3%A9=ok' }).resourceAttributes, { 'team,unit': 'a,b', 'x=y': '1', café: 'ok' })
  refuses(t, { ...on, OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,bad%ZZkey=1' }, 'OTEL_RESOURCE_ATTRIBUTES')
  refuses(t, { ...on, OTEL_RESOURCE_ATTRIBUTES: 'half%E2%82=1' }, 'OTEL_RESOURCE_ATTRIBUTES')
  refuses(t, { ...on, OTEL_RESOURCE_ATTRIBUTES: 'line%0Abreak=1' }, 'OTEL_RESOURCE_ATTRIBUTES')
  refuses(t, { ...on, OTEL_RESOURCE_ATTRIBUTES: '%20=1' }, 'OTEL_RESOURCE_ATTRIBUTES')
  t.throws(() => tracingFromEnv({ ...on, OTEL_RESOURCE_ATTRIBUTES: 'bad%ZZkey=1' }), /the key "bad%ZZkey" is not valid percent-encoding/)
  t.same(loadConfig({ env: { ...on, OTEL_RESOURCE_ATTRIBUTES: 'a%2Fb=c' } }).tracing.resourceAttributes, { 'a/b': 'c' }, 'through the config loader too')
})

t.test('collector header names are percent-decoded as well, then checked as header names', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  t.same(tracingFromEnv({ ...on, OTEL_EXPORTER_OTLP_HEADERS: 'x%2Dtenant=acme' }).headers, { 'x-tenant': 'acme' })
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_HEADERS: 'x%20tenant=s3cr3t' }, 'OTEL_EXPORTER_OTLP_HEADERS', /s3cr3t/)
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_HEADERS: 'x%ZZ=s3cr3t' }, 'OTEL_EXPORTER_OTLP_HEADERS', /s3cr3t/)
})

t.test('compression: none or gzip, the traces variable over the generic one, anything else refused', async (t) => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }
  t.equal(tracingFromEnv(on).compression, 'none')
  t.equal(tracingFromEnv({ ...on, OTEL_EXPORTER_OTLP_COMPRESSION: 'GZIP' }).compression, 'gzip')
  t.equal(tracingFromEnv({ ...on, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }).compression, 'none')
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' }, 'OTEL_EXPORTER_OTLP_COMPRESSION')
  refuses(t, { ...on, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'br' }, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION')
  t.equal(tracingFromEnv({ ...on, OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip' }).compression, 'gzip', 'the generic one is not read then')
})

t.test('TLS files: read and checked at start for an https endpoint, not read for an http one', needs('openssl'), async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-otlp-tls-unit-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const files = await makeTlsFiles(dir)
  const notPem = join(dir, 'not.pem')
  await writeFile(notPem, 'not a certificate')
  const https = { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example:4318' }

  const tls = tracingFromEnv({ ...https, OTEL_EXPORTER_OTLP_CERTIFICATE: files.caFile, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.certFile, OTEL_EXPORTER_OTLP_CLIENT_KEY: files.keyFile }).tls
  t.same([tls.ca, tls.cert, tls.key], [await readFile(files.caFile), await readFile(files.certFile), await readFile(files.keyFile)])
  t.same(tracingFromEnv({ ...https, OTEL_EXPORTER_OTLP_CERTIFICATE: files.caFile, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: files.otherCaFile }).tls.ca, await readFile(files.otherCaFile), 'the traces variable wins')
  t.same(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'missing.crt') }).tls, {}, 'over http:// the files are not read')

  refuses(t, { ...https, OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'missing.crt') }, 'OTEL_EXPORTER_OTLP_CERTIFICATE')
  refuses(t, { ...https, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: notPem }, 'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE')
  refuses(t, { ...https, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.certFile }, 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE')
  refuses(t, { ...https, OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: files.keyFile }, 'OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY')
  refuses(t, { ...https, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: notPem, OTEL_EXPORTER_OTLP_CLIENT_KEY: files.keyFile }, 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE')
  refuses(t, { ...https, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.certFile, OTEL_EXPORTER_OTLP_CLIENT_KEY: files.caFile }, 'OTEL_EXPORTER_OTLP_CLIENT_KEY')
  const otherKey = files.otherCaFile.replace(/\.crt$/, '.key')
  refuses(t, { ...https, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: files.certFile, OTEL_EXPORTER_OTLP_CLIENT_KEY: otherKey }, 'OTEL_EXPORTER_OTLP_CLIENT_KEY', /PRIVATE KEY/)
})

// Regression: X509Certificate parses DER as well, so a DER CA file passed the check, and tls,
// which reads PEM only, then ignored it: every export to the collector failed to verify.
t.test('a DER certificate file is refused: TLS reads PEM only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-otlp-der-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const der = join(dir, 'ca.der')
  await writeFile(der, new X509Certificate(CERTIFICATE_PEM).raw)
  refuses(t, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example:4318', OTEL_EXPORTER_OTLP_CERTIFICATE: der }, 'OTEL_EXPORTER_OTLP_CERTIFICATE')
})
