/**
 * Redis as people run it in production, for tests: certificates for TLS, a three-node Cluster
 * and a Sentinel, all real processes on free loopback ports, all stopped by `close`.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, spawnUntil, startRedis, type RunningRedis } from './redis-server.js'

const run = promisify(execFile)

export interface TlsFiles {
  caFile: string
  certFile: string
  keyFile: string
  /** A CA that signed nothing here: trusting only it must fail. */
  otherCaFile: string
}

/** A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost (openssl CLI). */
export async function makeTlsFiles (dir: string): Promise<TlsFiles> {
  const path = (name: string): string => join(dir, name)
  const newCa = async (name: string): Promise<void> => {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
      '-keyout', path(`${name}.key`), '-out', path(`${name}.crt`)])
  }
  await newCa('test-ca')
  await newCa('other-ca')
  await writeFile(path('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', path('server.key'), '-out', path('server.csr')])
  await run('openssl', ['x509', '-req', '-in', path('server.csr'), '-CA', path('test-ca.crt'), '-CAkey', path('test-ca.key'),
    '-CAcreateserial', '-days', '1', '-extfile', path('server.ext'), '-out', path('server.crt')])
  return { caFile: path('test-ca.crt'), certFile: path('server.crt'), keyFile: path('server.key'), otherCaFile: path('other-ca.crt') }
}

export interface RunningCluster {
  nodes: RunningRedis[]
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`, as REDIS_CLUSTER_NODES takes it. */
  addresses: string
  close: () => Promise<void>
}

/** Three masters sharing the 16,384 slots (no replicas); resolves once the cluster says `cluster_state:ok`. */
export async function startRedisCluster (): Promise<RunningCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-redis-cluster-'))
  const nodes: RunningRedis[] = []
  const close = async (): Promise<void> => {
    await Promise.all(nodes.map(async (node) => await node.close()))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`)] }))
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`)
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    for (const node of nodes) await untilClusterOk(node.port)
    return { nodes, addresses: addresses.join(','), close }
  } catch (err) {
    await close()
    throw err
  }
}

/** Asks the node until it reports the cluster ok: slots are agreed by gossip, after `create` returns. */
async function untilClusterOk (port: number): Promise<void> {
  let info = ''
  for (let attempt = 0; attempt < 200; attempt++) {
    info = (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout
    if (info.includes('cluster_state:ok')) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis cluster node ${port} never reported cluster_state:ok:\n${info}`)
}

export interface RunningSentinel {
  /** `127.0.0.1:PORT`, as REDIS_SENTINELS takes it. */
  address: string
  close: () => Promise<void>
}

/** A Sentinel watching `masterPort` under `name`; resolves once it monitors the master. */
export async function startSentinel (masterPort: number, name: string): Promise<RunningSentinel> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-redis-sentinel-'))
  const port = await freePort()
  const config = join(dir, 'sentinel.conf') // Sentinel rewrites its config file, so it gets its own
  await writeFile(config, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${name} 127.0.0.1 ${masterPort} 1\n`)
  let child: ChildProcess
  try {
    child = await spawnUntil('redis-server', [config, '--sentinel'], `+monitor master ${name}`)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    address: `127.0.0.1:${port}`,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
