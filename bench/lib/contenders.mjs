/**
 * What the benchmark runs: the upstreams (nginx serving the fixed stream, or the Node upstream)
 * and the four proxies in front of them, each its own process so its CPU and memory can be read
 * from /proc. A started server is `{ name, origin, pids(), stop() }`. The Node processes listen
 * on port 0 and /proc says which port each got; nginx takes no port 0, so it gets a free port
 * picked just before it starts, and a check that the listener there is its own.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SHORT_STREAM } from '../fixtures/responses-sse.mjs'
import { reverseProxyConfig, staticUpstreamConfig } from '../upstream/nginx-configs.mjs'
import { freePort, PortTakenError, processTree, startProcess, waitForListening, waitForOwnPort } from './processes.mjs'

export const BENCH = join(import.meta.dirname, '..')
export const ROOT = join(BENCH, '..')
export const GATEWAY_CLI = join(ROOT, 'dist', 'src', 'cli.js')
const SESSION = '0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'

/**
 * The proxies, anchors first; `label` is how the report names them. A `variantOf` the gateway
 * is the gateway configured differently (not an anchor), measured only in its `scenarios`.
 */
export const PROXIES = [
  { id: 'nginx', label: 'nginx', needs: 'nginx', start: startNginxProxy },
  { id: 'node-undici', label: 'node:http + undici', start: startNodeProxy('node-undici-proxy.mjs') },
  { id: 'fastify-http-proxy', label: 'fastify + @fastify/http-proxy', start: startNodeProxy('fastify-http-proxy.mjs') },
  { id: 'session-gateway', label: 'session-gateway', start: startGateway },
  { id: 'session-gateway-tracing', label: 'session-gateway + tracing', variantOf: 'session-gateway', scenarios: ['a'], start: startTracedGateway }
]
export const GATEWAY_ID = 'session-gateway'
export const TRACING_ID = 'session-gateway-tracing'

/**
 * The proxies this run uses in scenario `scenarioKey` (default: the one under way): selected by
 * `--proxies`, with their tool installed, and meant for that scenario.
 */
export function proxiesToRun (run, scenarioKey = run.scenarioKey) {
  return PROXIES.filter((proxy) => run.options.proxies.includes(proxy.id) &&
    (proxy.needs === undefined || run.tools[proxy.needs] !== undefined) &&
    (proxy.scenarios === undefined || scenarioKey === undefined || proxy.scenarios.includes(scenarioKey)))
}

/**
 * @param run `{ dir, tools, fileLimit, cpuProfileDir }`: the run's scratch directory, which of
 *   nginx/wrk it may use, the open-file limit, and where the gateway writes a CPU profile (if any).
 */
export async function startStaticUpstream (run) {
  if (run.tools.nginx === undefined) return await startNodeUpstream(run, 'static-upstream')
  const file = join(run.dir, 'nginx-upstream.conf')
  return await startNginx(run, 'nginx (static upstream)', 'load', (port) => {
    writeFileSync(file, staticUpstreamConfig({ dir: run.dir, port, body: SHORT_STREAM, workerConnections: nginxConnections(run), fileLimit: run.fileLimit }))
    return file
  })
}

export async function startNodeUpstream (run, name = 'node-upstream') {
  const proc = startProcess(name, process.execPath, [join(BENCH, 'upstream', 'node-upstream.mjs'), '0'], {
    role: 'load',
    env: { PATH: process.env.PATH ?? '' },
    logFile: join(run.dir, `${name}.log`)
  })
  return await ready(proc, 'node')
}

/**
 * nginx starts closing idle and just-accepted connections once fewer than 1/16 of its
 * `worker_connections` are free, so it gets 1/15 more slots than it has files for: it is then
 * limited by the open-file limit, as the Node proxies are.
 */
function nginxConnections (run) {
  return Math.ceil(run.fileLimit * 16 / 15) + 64
}

async function startNginxProxy (run, upstream) {
  const file = join(run.dir, 'nginx-proxy.conf')
  return await startNginx(run, 'nginx', 'proxy', (port) => {
    writeFileSync(file, reverseProxyConfig({
      dir: run.dir, port, upstreamPort: new URL(upstream.origin).port, sessionId: SESSION, workerConnections: nginxConnections(run), fileLimit: run.fileLimit
    }))
    return file
  })
}

/** Tries this many free ports when another process keeps taking the one picked. */
const NGINX_PORT_TRIES = 3

/** nginx with the config `configure(port)` writes; nginx takes no port 0, so the port is picked here. */
async function startNginx (run, name, role, configure) {
  const slug = name.replace(/\W+/g, '-')
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const file = configure(port)
    // -e: the log for errors before the config's error_log applies (the default may be unwritable).
    const proc = startProcess(name, run.tools.nginx, ['-p', run.dir, '-c', file, '-e', join(run.dir, `${slug}-startup.log`), '-g', 'daemon off;'], {
      role,
      env: { PATH: process.env.PATH ?? '' },
      logFile: join(run.dir, `${slug}.log`)
    })
    try {
      await waitForOwnPort(proc, port)
    } catch (err) {
      await proc.stop('SIGKILL')
      if (err instanceof PortTakenError && attempt < NGINX_PORT_TRIES) {
        run.progress(`${name}: ${err.message}; trying another port`)
        continue
      }
      throw err
    }
    return server(proc, `http://127.0.0.1:${port}`, 'nginx')
  }
}

function startNodeProxy (script) {
  return async (run, upstream) => {
    const proc = startProcess(script, process.execPath, [join(BENCH, 'proxies', script)], {
      role: 'proxy',
      env: { PATH: process.env.PATH ?? '', UPSTREAM_ORIGIN: upstream.origin, PORT: '0' },
      cwd: ROOT,
      logFile: join(run.dir, `${script}.log`)
    })
    return await ready(proc, 'node')
  }
}

/** session-gateway as an operator runs it: the built CLI, its defaults, a log line per request. */
async function startGateway (run, upstream, { name = 'session-gateway', env = {} } = {}) {
  if (!existsSync(GATEWAY_CLI)) throw new Error(`${GATEWAY_CLI} is missing: run "npm run build" first`)
  const profile = run.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${run.cpuProfileDir}`]
  const proc = startProcess(name, process.execPath, [...profile, GATEWAY_CLI], {
    role: 'proxy',
    // Exactly these settings: nothing from the caller's environment (REDIS_URL, CONFIG_FILE…).
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: `${upstream.origin}/v1`, LOG_LEVEL: 'info', ...env },
    cwd: ROOT,
    logFile: join(run.dir, `${name}.log`)
  })
  return await ready(proc, 'node')
}

/**
 * The gateway with tracing on, every request sampled, exporting OTLP/protobuf to a local sink
 * (its own process, not counted in the gateway's CPU). The queue is made large enough that
 * no span is dropped at the load's rate, so every span's cost is measured.
 */
async function startTracedGateway (run, upstream) {
  const sink = await ready(startProcess('otlp-sink', process.execPath, [join(BENCH, 'upstream', 'otlp-sink.mjs'), '0'], {
    role: 'load',
    env: { PATH: process.env.PATH ?? '' },
    logFile: join(run.dir, 'otlp-sink.log')
  }), 'node')
  let gateway
  try {
    gateway = await startGateway(run, upstream, {
      name: 'session-gateway-tracing',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.origin,
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_BSP_MAX_QUEUE_SIZE: '65536',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048',
        OTEL_BSP_SCHEDULE_DELAY: '200'
      }
    })
  } catch (err) {
    await sink.stop()
    throw err
  }
  return { ...gateway, stop: async () => { await gateway.stop(); await sink.stop() } }
}

/** `proc` once it listens (on the port 0 gave it; see `waitForListening`). */
async function ready (proc, kind) {
  let origins
  try {
    origins = await waitForListening(proc)
  } catch (err) {
    await proc.stop('SIGKILL')
    throw err
  }
  return server(proc, origins[0], kind)
}

function server (proc, origin, kind) {
  return {
    name: proc.name,
    origin,
    logFile: proc.logFile,
    /** nginx's work happens in its worker: count the master and its children. */
    pids: () => kind === 'nginx' ? processTree(proc.pid) : [proc.pid],
    running: proc.running,
    // SIGTERM: nginx's fast shutdown (SIGQUIT would wait out keep-alive connections); the
    // gateway's graceful one, which writes its CPU profile on the way out.
    stop: async () => await proc.stop('SIGTERM', 15_000)
  }
}
