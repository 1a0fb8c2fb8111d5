/**
 * What a gateway on the defaults loads: nothing a configuration doesn't use (footprint, and the
 * tracing issue's "with no endpoint set no OpenTelemetry module is loaded"). CommonJS requires
 * count too: a dependency's own `require('@opentelemetry/api')` (prom-client's did) is caught.
 */
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGatewayProcess } from '../support/gateway-process.js'
import { replySse, responseStream, startMockUpstream } from '../support/mock-upstream.js'

const PRELOAD = join(import.meta.dirname, '..', 'support', 'report-loaded-modules.cjs')

// The two gateways (each its own process, upstream and report file) start side by side.
t.jobs = 2

/** The packages (by node_modules name) a gateway loaded while proxying one request and serving /metrics. */
async function packagesLoaded (t: Test, env: Record<string, string>): Promise<Set<string>> {
  const upstream = await startMockUpstream(replySse([responseStream('resp_loaded', 'hi')]))
  t.teardown(async () => await upstream.close())
  const file = join(tmpdir(), `loaded-modules-${process.pid}-${Math.random().toString(36).slice(2)}.json`)
  const gateway = startGatewayProcess(t, { HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: upstream.url, LOADED_MODULES_FILE: file, ...env }, ['--require', PRELOAD])
  const origin = `http://127.0.0.1:${await gateway.port()}`
  const proxied = await request(`${origin}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","input":"hi","stream":true}' })
  await proxied.body.text()
  t.equal(proxied.statusCode, 200, 'a request was proxied')
  const metrics = await request(`${origin}/metrics`)
  t.match(await metrics.body.text(), /session_gateway_process_cpu_seconds_total/, '/metrics was served')
  gateway.child.kill('SIGTERM')
  t.equal((await gateway.exited).code, 0)
  const paths = JSON.parse(readFileSync(file, 'utf8')) as string[]
  return new Set(paths.flatMap((path) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1] ?? []))
}

t.test('on the defaults: no OpenTelemetry module, no Redis client, no YAML parser', async (t) => {
  const loaded = await packagesLoaded(t, {})
  t.same([...loaded].filter((name) => name.startsWith('@opentelemetry/')), [], 'no @opentelemetry package')
  t.notOk(loaded.has('ioredis'), 'no Redis client without REDIS_URL')
  t.notOk(loaded.has('yaml'), 'no YAML parser without a config file')
  t.ok(loaded.has('pino'), 'the check sees the packages that are loaded (pino)')
})

t.test('the control: with an endpoint set, the OpenTelemetry SDK is loaded', async (t) => {
  const loaded = await packagesLoaded(t, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_TIMEOUT: '300', OTEL_BSP_EXPORT_TIMEOUT: '300' })
  t.ok(loaded.has('@opentelemetry/sdk-trace-base'), 'sdk-trace-base')
  t.ok(loaded.has('@opentelemetry/api'), 'api')
})
