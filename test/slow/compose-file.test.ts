/**
 * The deployment files (Dockerfile, docker/compose*.yaml, docker/nginx-lb.conf,
 * docker/k8s-sidecar.yaml) checked against the code they deploy: every variable they set is a
 * setting the gateway reads (SETTINGS, read live, so new settings count at once) with a value
 * it accepts, ports and probes match the configured PORT, and the health checks really pass
 * against a running gateway and fail against a stopped one.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'
import { allSettings, loadConfig, type GatewayConfig } from '../../src/config/load-config.js'
import { TRACING_ENV_NAMES } from '../../src/config/tracing-env.js'
import { startGateway } from '../support/gateway.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dockerDir = join(root, 'docker')
const read = (path: string): string => readFileSync(join(root, path), 'utf8')

/** Variables a deployment may set that are not gateway settings, and why. */
const NON_SETTINGS: Record<string, string> = {
  NODE_ENV: 'tells Node libraries they run in production; the gateway reads no NODE_ENV',
  CONFIG_FILE: 'read by the CLI (src/cli.ts): the YAML file to load settings from',
  NODE_COMPILE_CACHE: 'read by Node 24 itself: where compiled code is cached between starts (warmed in the image)'
}
const settingEnvNames = (): Set<string> => new Set(allSettings().map((spec) => spec.env))

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
type Env = Record<string, string | undefined>
type Service = Record<string, any>

/** Each variable must be a setting or a documented non-setting. */
function checkVariableNames (t: TapTest, where: string, env: Env): void {
  const settings = settingEnvNames()
  for (const name of Object.keys(env)) {
    if (settings.has(name)) {
      t.pass(`${where}: ${name} is a setting`)
    } else if ((TRACING_ENV_NAMES as readonly string[]).includes(name)) {
      t.pass(`${where}: ${name} is an OpenTelemetry variable the gateway reads`)
    } else if (name in NON_SETTINGS) {
      t.pass(`${where}: ${name} is a known non-setting (${NON_SETTINGS[name]})`)
    } else {
      t.fail(`${where}: ${name} is neither a setting in src/config/load-config.ts nor a known non-setting`)
    }
  }
}

/** The config the gateway would run with: loadConfig throws ConfigError on any bad value. */
function configFor (t: TapTest, where: string, env: Env): GatewayConfig {
  try {
    return loadConfig({ env })
  } catch (err) {
    t.fail(`${where}: the gateway refuses this environment: ${(err as Error).message}`)
    throw err
  }
}

/** `${NAME:-default}` → default; `${NAME}` → unset; `$$` → `$`; as compose reads it with NAME unset. */
function interpolate (value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined
  const text = String(value)
  if (/^\$\{\w+\}$/.test(text)) return undefined
  return text.replace(/\$\{\w+:?-([^}]*)\}/g, '$1').replace(/\$\$/g, '$')
}

/** A compose `environment:`, mapping or list form, interpolated. */
function composeEnvironment (service: Service): Env {
  const env: Env = {}
  const raw = service.environment ?? {}
  if (Array.isArray(raw)) {
    for (const entry of raw as string[]) {
      const at = entry.indexOf('=')
      if (at === -1) env[entry] = undefined
      else env[entry.slice(0, at)] = interpolate(entry.slice(at + 1))
    }
  } else {
    for (const [name, value] of Object.entries(raw)) env[name] = interpolate(value)
  }
  return env
}

/** Container-side port of a compose `ports:` entry, short or long syntax. */
function containerPort (entry: unknown): number {
  if (typeof entry === 'object' && entry !== null) return Number((entry as { target: unknown }).target)
  return Number(String(entry).split('/')[0]!.split(':').at(-1))
}

/** Go-style duration (`35s`, `1m30s`) in milliseconds. */
function durationMs (value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let total = 0
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(amount) * units[unit!]!
  return total
}

/** The first http(s) URL in a command line or argument list. */
function urlIn (command: unknown): URL {
  const text = Array.isArray(command) ? command.join(' ') : String(command)
  const found = /https?:\/\/[^\s'"`)]+/.exec(text)
  if (found === null) throw new Error(`no URL in ${text}`)
  return new URL(found[0])
}

// ---- Dockerfile -------------------------------------------------------------------------

interface Stage { image: string, name: string | undefined, instructions: Array<{ keyword: string, args: string }> }

function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    if (keyword.toUpperCase() === 'FROM') {
      const [image = '', , name] = args.replace(/--platform=\S+\s+/, '').split(/\s+/)
      stages.push({ image, name, instructions: [] })
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args })
    }
  }
  return stages
}

function dockerfileEnv (stage: Stage): Env {
  const env: Env = {}
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue
    for (const [, name, value] of args.matchAll(/(\w+)=("[^"]*"|'[^']*'|\S+)/g)) env[name!] = value!.replace(/^["']|["']$/g, '')
  }
  return env
}

const dockerfile = parseDockerfile(read('Dockerfile'))
const runtime = dockerfile.at(-1)!
const imageEnv = dockerfileEnv(runtime)
const argsOf = (keyword: string): string[] => runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)

/** Runs a health check's `node -e …` the way the container would, against `port`. */
async function runCheck (argv: string[], env: Env = {}): Promise<number | null> {
  if (argv[0] !== 'node') throw new Error(`health checks run the image's node, not ${argv[0]}`)
  // cwd: the repository root stands for the image's WORKDIR, where dist/src is.
  const child = spawn(process.execPath, argv.slice(1), { cwd: root, env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' })
  const [code] = await once(child, 'close') as [number | null]
  return code
}

/** A probe or healthcheck command with its URL's port moved to the test gateway's. */
const onPort = (argv: string[], from: number, to: number): string[] => argv.map((arg) => arg.replaceAll(`:${from}/`, `:${to}/`))

t.test('Dockerfile: Node 24, production install, non-root, port, health check, PID 1', async (t) => {
  for (const stage of dockerfile) t.match(stage.image, /^node:24([.-]|$)/, `stage ${stage.name ?? stage.image} is built FROM node:24`)
  t.ok(dockerfile.length >= 2, 'multi-stage')
  t.ok(dockerfile[0]!.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args)), 'the build stage installs with npm ci')
  t.ok(dockerfile[0]!.instructions.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args)), 'the build stage runs npm run build')

  const installs = argsOf('RUN').filter((args) => /\bnpm ci\b/.test(args))
  t.ok(installs.length > 0 && installs.every((args) => args.includes('--omit=dev')), 'the runtime stage runs npm ci --omit=dev')
  t.notOk(argsOf('RUN').some((args) => /npm run build|tsc\b/.test(args)), 'the runtime stage compiles nothing')
  t.notOk(argsOf('COPY').some((args) => /(^|\s)(\.\/)?src\b/.test(args)), 'the runtime stage copies no TypeScript sources')
  t.ok(argsOf('COPY').some((args) => /--from=\S+.*dist\/src/.test(args)), 'the runtime stage copies the built dist/src')

  const user = argsOf('USER').at(-1) ?? 'root'
  const name = user.split(':')[0]!
  t.ok(name === 'node' || (/^\d+$/.test(name) && name !== '0'), `runs as a non-root user (${user})`)
  // Node keys its compile cache directory by uid: warmed as another user, it is never read.
  const warmUp = runtime.instructions.findIndex((i) => i.keyword === 'RUN' && /dist\/src\/cli\.js --help/.test(i.args))
  t.ok(warmUp > 0, 'the compile cache is warmed')
  t.equal(runtime.instructions.slice(0, warmUp).filter((i) => i.keyword === 'USER').at(-1)?.args, user, 'as the user the gateway runs as')

  checkVariableNames(t, 'Dockerfile ENV', imageEnv)
  // Set by the image, they would beat a mounted YAML file's server.host and server.port.
  t.notOk('HOST' in imageEnv || 'PORT' in imageEnv, 'the image sets neither HOST nor PORT: the defaults serve, and a YAML file can change them')
  const config = configFor(t, 'Dockerfile ENV', imageEnv)
  t.ok(['0.0.0.0', '::'].includes(config.server.host), 'listens on every interface, so published ports reach it')
  t.same(argsOf('EXPOSE').flatMap((args) => args.split(/\s+/)).map((port) => Number(port.split('/')[0])), [config.server.port], 'EXPOSE matches PORT')

  const cmd = JSON.parse(argsOf('CMD').at(-1) ?? 'null') as unknown
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> }
  t.same(cmd, ['node', pkg.bin['session-gateway']], 'CMD is exec form: node runs the CLI as PID 1, no npm or shell in between')
  t.equal(argsOf('STOPSIGNAL').at(-1), 'SIGTERM', 'STOPSIGNAL SIGTERM, which the CLI traps')

  const healthcheck = argsOf('HEALTHCHECK').at(-1)
  t.ok(healthcheck, 'HEALTHCHECK present')
  const check = JSON.parse(/\bCMD\s+(\[.*\])\s*$/.exec(healthcheck ?? '')?.[1] ?? 'null') as string[] | null
  t.ok(Array.isArray(check), 'HEALTHCHECK CMD is exec form')
  t.match(check?.join(' ') ?? '', /\/healthz\b/, 'HEALTHCHECK hits /healthz')

  const gateway = await startGateway({ UPSTREAM_URL: 'http://127.0.0.1:9/v1' })
  t.equal(await runCheck(check!, { ...imageEnv, PORT: String(gateway.port) }), 0, 'HEALTHCHECK passes against a running gateway (node only, no curl)')
  const file = join(t.testdir({ 'gateway.yaml': `server:\n  port: ${gateway.port}\n` }), 'gateway.yaml')
  t.equal(await runCheck(check!, { ...imageEnv, CONFIG_FILE: file }), 0, 'HEALTHCHECK finds a port set in a mounted YAML file (CONFIG_FILE)')
  t.equal(await runCheck(check!, { ...imageEnv, CONFIG_FILE: file, PORT: '9' }), 1, 'and PORT, which the gateway prefers, before it (nothing listens on 9)')
  await gateway.close()
  t.equal(await runCheck(check!, { ...imageEnv, PORT: String(gateway.port) }), 1, 'HEALTHCHECK fails once it has stopped')
})

t.test('.dockerignore keeps local state out and lets the build inputs in', async (t) => {
  const ignored = read('.dockerignore').split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  for (const pattern of ['node_modules', '.git', 'dist', '.tap', 'coverage', '*.log']) t.ok(ignored.includes(pattern), `ignores ${pattern}`)
  for (const input of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'config.example.yaml']) t.notOk(ignored.includes(input), `keeps ${input}`)
})

// ---- compose ----------------------------------------------------------------------------

function loadCompose (file: string): { services: Record<string, Service> } {
  return parse(readFileSync(join(dockerDir, file), 'utf8'), { merge: true }) as { services: Record<string, Service> }
}

/** Services built from this repository's Dockerfile. */
function gatewayServices (services: Record<string, Service>): Array<[string, Service]> {
  return Object.entries(services).filter(([, service]) => {
    const build = typeof service.build === 'string' ? { context: service.build } : service.build
    return build !== undefined && resolve(dockerDir, build.context ?? '.') === resolve(root) && (build.dockerfile ?? 'Dockerfile') === 'Dockerfile'
  })
}

/** The checks every gateway service gets; returns its effective config. */
async function checkGatewayService (t: TapTest, file: string, name: string, service: Service, services: Record<string, Service>): Promise<GatewayConfig> {
  const where = `${file} ${name}`
  const env = composeEnvironment(service)
  checkVariableNames(t, where, env)
  const config = configFor(t, where, { ...imageEnv, ...env })
  t.ok(['0.0.0.0', '::'].includes(config.server.host), `${where}: listens on every interface of its container`)
  for (const entry of [...(service.ports ?? []), ...(service.expose ?? [])]) t.equal(containerPort(entry), config.server.port, `${where}: port ${String(entry)} targets PORT ${config.server.port}`)

  const test = service.healthcheck?.test as string[] | undefined
  t.equal(test?.[0], 'CMD', `${where}: healthcheck is exec form`)
  const url = urlIn(test)
  t.equal(url.pathname, '/healthz', `${where}: healthcheck hits /healthz`)
  t.equal(Number(url.port), config.server.port, `${where}: healthcheck uses PORT`)
  const gateway = await startGateway({ UPSTREAM_URL: 'http://127.0.0.1:9/v1' })
  t.equal(await runCheck(onPort(test!.slice(1), config.server.port, gateway.port)), 0, `${where}: healthcheck passes against a running gateway`)
  await gateway.close()

  t.ok(durationMs(String(service.stop_grace_period ?? '10s')) > config.server.shutdownGraceMs, `${where}: stop_grace_period outlasts SHUTDOWN_GRACE_MS (${config.server.shutdownGraceMs} ms)`)
  checkDependsOn(t, where, service, services)

  const redis = env.REDIS_URL
  if (redis !== undefined) {
    const host = new URL(redis).hostname
    t.match(services[host]?.image, /^redis:/, `${where}: REDIS_URL names the redis service`)
  }
  return config
}

function checkDependsOn (t: TapTest, where: string, service: Service, services: Record<string, Service>): void {
  for (const [dependency, condition] of Object.entries(service.depends_on ?? {})) {
    t.equal((condition as { condition?: string }).condition, 'service_healthy', `${where}: waits for ${dependency} to be healthy`)
    t.ok(services[dependency]?.healthcheck, `${where}: ${dependency} has a healthcheck to wait for`)
  }
}

function checkRedis (t: TapTest, file: string, services: Record<string, Service>): void {
  const redis = services.redis
  t.match(redis?.image, /^redis:7-alpine/, `${file}: redis is redis:7-alpine`)
  t.same(redis?.healthcheck?.test?.slice(1), ['redis-cli', 'ping'], `${file}: redis healthcheck is redis-cli ping`)
}

t.test('docker/compose.yaml wires a gateway, Redis and an example client', async (t) => {
  const { services } = loadCompose('compose.yaml')
  const gateways = gatewayServices(services)
  t.same(gateways.map(([name]) => name), ['gateway'], 'one gateway service, built from ../Dockerfile')
  const gateway = services.gateway!
  const config = await checkGatewayService(t, 'compose.yaml', 'gateway', gateway, services)
  t.ok(composeEnvironment(gateway).UPSTREAM_URL, 'UPSTREAM_URL is set')
  t.equal(composeEnvironment(gateway).REDIS_URL, 'redis://redis:6379', 'REDIS_URL points at the redis service')
  t.ok((gateway.ports ?? []).length > 0, 'the gateway publishes its port')
  checkRedis(t, 'compose.yaml', services)

  const client = Object.entries(services).find(([, service]) => 'OPENAI_BASE_URL' in composeEnvironment(service))
  t.ok(client, 'an example client service')
  const [clientName, clientService] = client!
  t.ok(clientService.profiles?.includes('example'), `${clientName} is under the example profile, so a plain up skips it`)
  const clientEnv = composeEnvironment(clientService)
  const baseURL = new URL(clientEnv.OPENAI_BASE_URL!)
  t.equal(baseURL.hostname, 'gateway', 'OPENAI_BASE_URL names the gateway service')
  t.equal(Number(baseURL.port), config.server.port, 'OPENAI_BASE_URL uses the gateway PORT')
  t.equal(baseURL.pathname, '/v1', 'OPENAI_BASE_URL ends in /v1')
  t.ok('OPENAI_API_KEY' in clientEnv && clientEnv.OPENAI_API_KEY === undefined, 'OPENAI_API_KEY is passed through from the shell, never written in the file')
  checkDependsOn(t, `compose.yaml ${clientName}`, clientService, services)
})

t.test('docker/compose.tracing.yaml sends the gateway\'s spans to an OpenTelemetry collector', async (t) => {
  const { services } = loadCompose('compose.tracing.yaml')
  const gateways = gatewayServices(services)
  t.same(gateways.map(([name]) => name), ['gateway'], 'one gateway service, built from ../Dockerfile')
  const config = await checkGatewayService(t, 'compose.tracing.yaml', 'gateway', gateways[0]![1], services)
  t.ok(config.tracing.enabled, 'tracing is on')
  const endpoint = new URL(config.tracing.endpoint)
  const collector = services[endpoint.hostname]
  t.match(collector?.image, /^otel\/opentelemetry-collector(-contrib)?:\d/, 'the endpoint names the collector service, a pinned collector image')
  t.ok(durationMs(String(gateways[0]![1].stop_grace_period)) > config.server.shutdownGraceMs + 5_000, 'stop_grace_period leaves time for the last spans')
  const mount = (collector?.volumes as string[] | undefined)?.find((v) => v.endsWith(':/etc/otelcol/config.yaml:ro'))
  t.ok(mount, 'the collector config is mounted where the command reads it')
  t.same(collector?.command, ['--config=/etc/otelcol/config.yaml'])
  const collectorConfig = parse(readFileSync(join(dockerDir, mount!.split(':')[0]!), 'utf8')) as Record<string, any>
  t.equal(collectorConfig.receivers.otlp.protocols.http.endpoint, `0.0.0.0:${endpoint.port}`, 'its OTLP/HTTP receiver listens on the port the gateway sends to')
  t.equal(endpoint.pathname, '/v1/traces')
  t.ok(collectorConfig.service.pipelines.traces.receivers.includes('otlp'), 'a traces pipeline reads the OTLP receiver')
  for (const exporter of collectorConfig.service.pipelines.traces.exporters as string[]) t.ok(exporter in collectorConfig.exporters, `exporter ${exporter} is configured`)
})

t.test('docker/compose.replicas.yaml runs two replicas behind nginx, sharing Redis', async (t) => {
  const { services } = loadCompose('compose.replicas.yaml')
  const gateways = gatewayServices(services)
  t.ok(gateways.length >= 2, `at least two gateway replicas (${gateways.map(([name]) => name).join(', ')})`)
  const ports = new Map<string, number>()
  let bodyLimit = 0
  for (const [name, service] of gateways) {
    const config = await checkGatewayService(t, 'compose.replicas.yaml', name, service, services)
    ports.set(name, config.server.port)
    bodyLimit = Math.max(bodyLimit, config.server.bodyLimitBytes)
  }
  const redisUrls = new Set(gateways.map(([, service]) => composeEnvironment(service).REDIS_URL))
  t.equal(redisUrls.size, 1, 'every replica has the same REDIS_URL')
  t.ok([...redisUrls][0], 'and it is set')
  checkRedis(t, 'compose.replicas.yaml', services)

  const lb = Object.entries(services).find(([, service]) => /^nginx[:@]/.test(String(service.image)))
  t.ok(lb, 'an nginx load balancer service')
  const [lbName, lbService] = lb!
  const mount = (lbService.volumes as string[]).find((volume) => volume.split(':')[0]!.endsWith('.conf'))!
  const confPath = resolve(dockerDir, mount.split(':')[0]!)
  t.ok(existsSync(confPath), `${lbName} mounts ${mount.split(':')[0]}, which exists`)
  t.equal(dirname(mount.split(':')[1]!), '/etc/nginx/conf.d', 'mounted where nginx includes it inside http {}')

  const conf = readFileSync(confPath, 'utf8').replace(/#.*$/gm, '')
  const upstreams = [...conf.matchAll(/upstream\s+(\S+)\s*\{([^}]*)\}/g)]
  t.equal(upstreams.length, 1, 'one upstream block')
  const [, upstreamName, upstreamBody] = upstreams[0]!
  const servers = [...upstreamBody!.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((match) => match[1])
  t.same(servers.sort(), [...ports].map(([name, port]) => `${name}:${port}`).sort(), 'the upstream lists every replica at its PORT')
  t.match(conf, new RegExp(`proxy_pass\\s+http://${upstreamName};`), 'proxy_pass goes to that upstream')
  t.match(conf, /proxy_buffering\s+off;/, 'proxy_buffering off (SSE unbuffered)')
  t.match(conf, /proxy_http_version\s+1\.1;/, 'proxy_http_version 1.1')
  t.match(conf, /underscores_in_headers\s+on;/, 'underscores_in_headers on (session_id survives)')
  t.match(conf, /proxy_set_header\s+Upgrade\s+\$http_upgrade;/, 'passes Upgrade for WebSockets')
  t.match(conf, /proxy_set_header\s+Connection\s+(\$connection_upgrade|"upgrade");/, 'passes Connection: upgrade for WebSockets')
  const readTimeout = /proxy_read_timeout\s+(\w+);/.exec(conf)?.[1] ?? '60s'
  t.ok(durationMs(/\d$/.test(readTimeout) ? `${readTimeout}s` : readTimeout) >= 600_000, `proxy_read_timeout (${readTimeout}) is long enough for a model that thinks for minutes`)
  const [, size = '1', unit = ''] = /client_max_body_size\s+(\d+)([kmg]?);/i.exec(conf) ?? []
  const maxBody = Number(size) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[unit.toLowerCase()]!
  t.ok(Number(size) === 0 || maxBody >= bodyLimit, `client_max_body_size lets through every body the gateway accepts (${bodyLimit} bytes)`)
  const listen = Number(/listen\s+(?:[\d.]+:)?(\d+)/.exec(conf)?.[1])
  for (const entry of lbService.ports ?? []) t.equal(containerPort(entry), listen, `${lbName} publishes the port nginx listens on`)
  t.match(urlIn(lbService.healthcheck?.test).pathname, '/healthz', `${lbName} healthcheck goes through to /healthz`)
  checkDependsOn(t, `compose.replicas.yaml ${lbName}`, lbService, services)
  t.same(Object.keys(lbService.depends_on ?? {}).sort(), [...ports.keys()].sort(), `${lbName} waits for every replica`)
})

// ---- Kubernetes ---------------------------------------------------------------------------

t.test('docker/k8s-sidecar.yaml: probes, ports and shutdown match the gateway container', async (t) => {
  const documents = parseAllDocuments(read('docker/k8s-sidecar.yaml')).map((doc) => doc.toJS() as Service)
  const deployment = documents.find((doc) => doc.kind === 'Deployment')
  t.ok(deployment, 'a Deployment')
  const pod = deployment!.spec.template.spec as Service
  const all: Service[] = [...(pod.initContainers ?? []), ...(pod.containers ?? [])]
  const sidecar = all.find((container) => /session-gateway/.test(String(container.image)))!
  t.ok(sidecar, 'a session-gateway container')
  if ((pod.initContainers ?? []).includes(sidecar)) t.equal(sidecar.restartPolicy, 'Always', 'as an init container it is a native sidecar (restartPolicy: Always)')

  const env: Env = Object.fromEntries((sidecar.env ?? []).map((entry: { name: string, value?: string }) => [entry.name, entry.value]))
  checkVariableNames(t, 'k8s gateway container', env)
  const config = configFor(t, 'k8s gateway container', { ...imageEnv, ...env })
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(config.server.host)
  t.ok(loopback, `the sidecar listens on loopback only (HOST=${config.server.host})`)
  t.same((sidecar.ports ?? []).map((port: { containerPort: number }) => port.containerPort), [config.server.port], 'containerPort is PORT')

  const gateway = await startGateway({ UPSTREAM_URL: 'http://127.0.0.1:9/v1' })
  t.teardown(async () => await gateway.close())
  const probes: Array<[string, string]> = [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz'], ['startupProbe', '/healthz']]
  for (const [kind, path] of probes) {
    const probe = sidecar[kind]
    if (probe === undefined) {
      t.not(kind, 'livenessProbe', 'a liveness probe')
      t.not(kind, 'readinessProbe', 'a readiness probe')
      continue
    }
    if (probe.httpGet !== undefined) {
      // The kubelet sends httpGet probes to the pod IP, where a loopback-bound gateway is not.
      t.notOk(loopback, `${kind}: httpGet cannot reach a gateway bound to ${config.server.host}`)
      const named = (sidecar.ports ?? []).find((port: { name?: string }) => port.name === probe.httpGet.port)
      t.equal(probe.httpGet.path, path, `${kind} path is ${path}`)
      t.equal(named?.containerPort ?? probe.httpGet.port, config.server.port, `${kind} port is PORT`)
    } else {
      const command = probe.exec.command as string[]
      const url = urlIn(command)
      t.equal(url.pathname, path, `${kind} path is ${path}`)
      t.equal(Number(url.port), config.server.port, `${kind} port is PORT`)
      t.ok(url.hostname === config.server.host || (loopback && url.hostname === 'localhost'), `${kind} host is where the gateway listens`)
      t.equal(await runCheck(onPort(command, config.server.port, gateway.port)), 0, `${kind} passes against a running gateway`)
    }
  }

  t.ok(pod.terminationGracePeriodSeconds * 1000 > config.server.shutdownDelayMs + config.server.shutdownGraceMs, `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) outlasts SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS`)
  t.equal(sidecar.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, true, 'runAsNonRoot')
  t.equal(sidecar.securityContext?.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem')
  t.equal(sidecar.securityContext?.allowPrivilegeEscalation, false, 'no privilege escalation')
  const uid = sidecar.securityContext?.runAsUser ?? pod.securityContext?.runAsUser
  t.ok(uid === undefined || uid > 0, 'runAsUser is not root')
  t.ok(sidecar.resources?.requests?.cpu && sidecar.resources?.requests?.memory, 'resource requests')
  t.ok(sidecar.resources?.limits?.memory, 'a memory limit')

  const app = (pod.containers as Service[]).find((container) => container !== sidecar && (container.env ?? []).some((e: { name: string }) => e.name === 'OPENAI_BASE_URL'))
  t.ok(app, 'an app container with OPENAI_BASE_URL')
  const baseURL = new URL(app!.env.find((e: { name: string }) => e.name === 'OPENAI_BASE_URL').value)
  t.ok(baseURL.hostname === config.server.host || (loopback && baseURL.hostname === 'localhost'), `the app reaches the gateway on the pod's loopback (${baseURL.host})`)
  t.equal(Number(baseURL.port), config.server.port, 'the app uses the gateway PORT')
  t.equal(baseURL.pathname, '/v1', 'the app base URL ends in /v1')
})

// ---- the guide ----------------------------------------------------------------------------

t.test('docs/deploy.md sets only real settings in its systemd unit and docker run lines', async (t) => {
  const guide = read('docs/deploy.md')
  const env: Env = {}
  for (const [, names] of guide.matchAll(/^Environment=(.+)$/gm)) {
    for (const [, name, value] of names!.matchAll(/(\w+)=(\S+)/g)) env[name!] = value
  }
  for (const [, name, value] of guide.matchAll(/(?:^|\s)-e\s+(\w+)=(\S+)/gm)) env[name!] = value
  t.ok(Object.keys(env).length > 0, 'the guide sets some variables')
  checkVariableNames(t, 'docs/deploy.md', env)
  configFor(t, 'docs/deploy.md', env)
})
