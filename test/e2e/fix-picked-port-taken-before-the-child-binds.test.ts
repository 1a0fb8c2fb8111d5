/**
 * Regression: the tests' servers that take no port 0 (redis-server, a Sentinel) were started on
 * a port picked just before (bound to port 0, then released). Another process (a parallel test
 * file) could bind it in between: redis-server then exited and the test failed, or a server
 * that said it was ready all the same left clients talking to that other process. Now the
 * child must hold the listener itself (test/support/own-port.ts), and is started again on
 * another port when it lost the one picked. The "other process" here is this test's listener
 * on the port handed out first.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type Server } from 'node:net'
import t, { type Test } from 'tap'
import { freePort, listeningPorts } from '../../bench/lib/processes.mjs'
import { envWithoutTapHooks } from '../support/child-env.js'
import { needs } from '../support/needs.js'
import { PortTakenError, startOnOwnPort } from '../support/own-port.js'
import { startRedis } from '../support/redis-server.js'

/** A listener of this process's own on a loopback port, answering `greeting` to whoever connects. */
async function holdPort (t: Test, greeting: string): Promise<number> {
  const server: Server = createServer((socket) => socket.end(greeting))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return (server.address() as { port: number }).port
}

/** Hands out `taken` first, then free ports; counts what it handed out. */
function takenFirst (taken: number): { pickPort: () => Promise<number>, picked: number[] } {
  const picked: number[] = []
  const pickPort = async (): Promise<number> => {
    const port = picked.length === 0 ? taken : await freePort()
    picked.push(port)
    return port
  }
  return { pickPort, picked }
}

/** What a server on `port` says first to a new connection, up to `bytes`. */
async function firstWords (port: number, send: string, bytes: number): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.write(send)
  let text = ''
  for await (const chunk of socket) {
    text += String(chunk)
    if (text.length >= bytes) break
  }
  socket.destroy()
  return text
}

t.test('redis-server started on a picked port another process took first starts again on another, and answers there', needs('redis-server'), async (t) => {
  const taken = await holdPort(t, 'not redis\r\n')
  const { pickPort, picked } = takenFirst(taken)
  const redis = await startRedis({ pickPort })
  t.teardown(redis.close)
  t.equal(picked.length, 2, 'a second port was picked')
  t.not(redis.port, taken, 'not the taken port')
  t.equal(await firstWords(redis.port, 'PING\r\n', '+PONG\r\n'.length), '+PONG\r\n', 'redis answers on the port returned')
})

t.test('restarting redis-server on its port after another process took it fails by name', needs('redis-server'), async (t) => {
  const redis = await startRedis()
  t.teardown(redis.close)
  await redis.kill()
  const thief = createServer()
  thief.listen(redis.port, '127.0.0.1')
  await once(thief, 'listening')
  t.teardown(() => { thief.close() })
  await t.rejects(redis.restart(), PortTakenError)
})

/** A server that says "ready" even when its bind failed, and keeps running: as careless as a server gets. */
const CARELESS_SERVER = `
const server = require('node:net').createServer((socket) => socket.end('careless'))
server.on('error', () => console.log('ready'))
server.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('ready'))
setInterval(() => {}, 1 << 30)
`

t.test('a child that says it is ready without holding the picked port is not taken for the server there', async (t) => {
  const children: ChildProcess[] = []
  t.teardown(() => { for (const child of children) child.kill('SIGKILL') })
  const startCareless = async (port: number): Promise<ChildProcess> => {
    const child = spawn(process.execPath, ['-e', CARELESS_SERVER, String(port)], { env: envWithoutTapHooks(), stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    await once(child.stdout, 'data')
    return child
  }
  const taken = await holdPort(t, 'the holder')
  const { pickPort, picked } = takenFirst(taken)
  const { port, child } = await startOnOwnPort(startCareless, { pickPort })
  t.equal(picked.length, 2, 'a second port was picked')
  t.same(listeningPorts([child.pid!]), [port], 'the child returned holds the port returned')
  t.equal(await firstWords(port, '', 'careless'.length), 'careless', 'and answers there')
  t.equal(await firstWords(taken, '', 'the holder'.length), 'the holder', 'the taken port is still the holder\'s')
})
