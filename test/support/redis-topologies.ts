/**
 * Redis as people run it in production, for tests: certificates for TLS, a three-node Cluster,
 * a replica and Sentinels (with passwords, and quick to fail over if asked), all real
 * processes on free loopback ports each holds itself (./own-port.ts), all stopped by `close`.
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { until } from './polling.js'
import { startOnOwnPort } from './own-port.js'
import { spawnUntil, startRedis, type RunningRedis } from './redis-server.js'

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

/** An ACL user and password, or a password alone (the default user's, `requirepass`). */
export interface RedisAuth {
  username?: string
  password: string
}

/**
 * One command to the server on `port`, on a connection of its own, logged in with `auth`.
 * A Sentinel too: it answers plain clients.
 */
export async function ask (port: number, command: Array<string | number>, auth?: RedisAuth): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, ...auth, lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  client.on('error', () => {}) // the command's own rejection says what went wrong
  try {
    await client.connect()
    const [name, ...args] = command
    return await client.call(String(name), ...args)
  } finally {
    client.disconnect()
  }
}

/** A replica of `master` (`replicaof`); resolves once its link to the master is up and synced. */
export async function startReplica (master: RunningRedis): Promise<RunningRedis> {
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] })
  try {
    await until(async () => String(await ask(replica.port, ['INFO', 'replication'])), (info) => info.includes('master_link_status:up'), `saw replica ${replica.port} linked to master ${master.port}`)
    return replica
  } catch (err) {
    await replica.close()
    throw err
  }
}

export interface SentinelOptions {
  /** `down-after-milliseconds`: how long the master may not answer before it is down (Sentinel's own default: 30 s). */
  downAfterMs?: number
  /** `failover-timeout` (Sentinel's own default: 3 min; a failed failover is retried after twice that). */
  failoverTimeoutMs?: number
  /** How the Sentinel logs in to the master and replicas (`auth-user`, `auth-pass`). */
  dataAuth?: RedisAuth
  /** The Sentinel's own password (`requirepass`: the default user's). */
  requirePass?: string
  /** An ACL user of the Sentinel's own, allowed every command. */
  user?: Required<RedisAuth>
  /** Resolve only once the Sentinel knows this many replicas of the master, linked to it: a failover needs one. */
  replicas?: number
}

export interface RunningSentinel {
  /** `127.0.0.1:PORT`, as REDIS_SENTINELS takes it. */
  address: string
  /** Where the Sentinel says the master is now (`SENTINEL get-master-addr-by-name`): `127.0.0.1:PORT`. */
  masterAddress: () => Promise<string>
  /** SIGSTOPs the Sentinel: connections are still accepted (by the kernel), nothing is answered. */
  pause: () => void
  close: () => Promise<void>
}

/** A Sentinel watching `masterPort` under `name`; resolves once it monitors the master (and knows `replicas` replicas). */
export async function startSentinel (masterPort: number, name: string, options: SentinelOptions = {}): Promise<RunningSentinel> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-redis-sentinel-'))
  const config = join(dir, 'sentinel.conf') // Sentinel rewrites its config file, so it gets its own
  let started: { port: number, child: ChildProcess }
  try {
    started = await startOnOwnPort(async (picked) => {
      await writeFile(config, sentinelConfig(picked, dir, masterPort, name, options))
      return await spawnUntil('redis-server', [config, '--sentinel'], `+monitor master ${name}`)
    })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const { port, child } = started
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  }
  const auth = options.requirePass !== undefined ? { password: options.requirePass } : options.user
  const sentinel = {
    address: `127.0.0.1:${port}`,
    masterAddress: async () => ((await ask(port, ['SENTINEL', 'get-master-addr-by-name', name], auth)) as string[]).join(':'),
    pause: () => { child.kill('SIGSTOP') },
    close
  }
  try {
    if (options.replicas !== undefined) await untilSentinelKnowsReplicas(port, name, options.replicas, auth)
    return sentinel
  } catch (err) {
    await close()
    throw err
  }
}

function sentinelConfig (port: number, dir: string, masterPort: number, name: string, options: SentinelOptions): string {
  const lines = [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`, // one Sentinel: a quorum of one
    ...(options.downAfterMs !== undefined ? [`sentinel down-after-milliseconds ${name} ${options.downAfterMs}`] : []),
    ...(options.failoverTimeoutMs !== undefined ? [`sentinel failover-timeout ${name} ${options.failoverTimeoutMs}`] : []),
    ...(options.dataAuth?.username !== undefined ? [`sentinel auth-user ${name} ${options.dataAuth.username}`] : []),
    ...(options.dataAuth !== undefined ? [`sentinel auth-pass ${name} ${options.dataAuth.password}`] : []),
    ...(options.requirePass !== undefined ? [`requirepass ${options.requirePass}`] : []),
    ...(options.user !== undefined ? [`user ${options.user.username} on >${options.user.password} +@all`] : [])
  ]
  return lines.join('\n') + '\n'
}

/** Sentinel learns replicas from the master's INFO (every 10 s): until then it has none to promote. */
async function untilSentinelKnowsReplicas (port: number, name: string, count: number, auth: RedisAuth | undefined): Promise<void> {
  const linked = async (): Promise<number> => {
    const replicas = (await ask(port, ['SENTINEL', 'replicas', name], auth)) as string[][]
    return replicas.map(fieldsOf).filter((r) => r.flags === 'slave' && r['master-link-status'] === 'ok').length
  }
  await until(linked, (n) => n >= count, `saw the Sentinel on ${port} know ${count} replica(s) of ${name}`)
}

/** `[k1, v1, k2, v2, …]`, as Sentinel answers, as an object. */
function fieldsOf (flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!
  return fields
}
