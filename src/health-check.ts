/**
 * The image's HEALTHCHECK: GETs a path (`/healthz` unless given) of the gateway this environment
 * configures, and exits 0 on a 2xx, 1 otherwise. Host and port come from the settings the gateway
 * reads (CONFIG_FILE, then the environment), so a port moved in a mounted YAML file is the one
 * checked. A `--config` flag given to the gateway itself is not seen here: use CONFIG_FILE.
 *
 *   node dist/src/health-check.js [/healthz | /readyz]
 */
import { get } from 'node:http'
import { loadConfig } from './config/load-config.js'

const TIMEOUT_MS = 2_500 // under the HEALTHCHECK's --timeout=3s, so the reason is printed

/** How this host reaches a listener bound to `host`: a wildcard address by loopback. */
function reachableHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

async function check (path: string): Promise<number> {
  let url: string
  try {
    // CONFIG_FILE="" counts as unset, as in the CLI.
    const { server } = loadConfig({ file: process.env.CONFIG_FILE === '' ? undefined : process.env.CONFIG_FILE, env: process.env })
    url = `http://${reachableHost(server.host)}:${server.port}${path}`
  } catch (err) {
    process.stderr.write(`health check: ${(err as Error).message}\n`)
    return 1
  }
  const problem = await statusProblem(url)
  if (problem === undefined) return 0
  process.stderr.write(`health check: ${url} ${problem}\n`)
  return 1
}

/** Undefined for a 2xx. node:http, not fetch: fetch refuses ports such as 6000 that PORT may be. */
async function statusProblem (url: string): Promise<string | undefined> {
  return await new Promise((resolve) => {
    const req = get(url, { timeout: TIMEOUT_MS }, (res) => {
      res.resume()
      const status = res.statusCode ?? 0
      resolve(status >= 200 && status < 300 ? undefined : `answered ${status}`)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`failed: ${err.code ?? err.message}`))
  })
}

process.exitCode = await check(process.argv[2] ?? '/healthz')
