/**
 * What reading a WebSocket client's `response.create` for its prefix costs (CACHE_ANALYSIS),
 * per message, on the bodies of bench/cache/bodies.mjs sent as `{"type":"response.create",…}`:
 *  - headers: the client direction's frames parsed for their headers only (the floor);
 *  - type only: what CACHE_ANALYSIS=false costs: each message read until its top-level `type`
 *    (plain, through ClientRequests with readsPrefixes false), which codex writes first;
 *  - plain: a masked text frame read through ClientRequests (unmasked copy + PrefixFingerprint);
 *  - compressed: the same message permessage-deflate compressed (as codex sends it whenever
 *    the upstream agrees), inflated on the side and read;
 *  - HTTP tap: the body through PrefixFingerprint alone, for comparison.
 * Each runs until its fingerprint is known, the frames pushed as 64 KiB reads. "CPU" is the
 * process's user + system time, which includes zlib's work on the libuv thread pool; "until
 * known" is the wall time until the fingerprint could be recorded. Median per message, in ms.
 *
 * `node bench/cache/websocket-tap.mjs [--quick] [--only small,codex]` (needs `npm run build`).
 */
import { randomBytes } from 'node:crypto'
import { constants, deflateRawSync } from 'node:zlib'
import { parseArgs } from 'node:util'
import { PrefixFingerprint } from '../../dist/src/observe/prefix-fingerprint.js'
import { FrameParser } from '../../dist/src/websocket/frame-parser.js'
import { ClientRequests } from '../../dist/src/websocket/client-requests.js'
import { median } from '../lib/stats.mjs'
import { benchBodies } from './bodies.mjs'

const { values: options } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
const MiB = 1024 * 1024
const READ = 64 * 1024

function roundsFor (bytes) {
  const full = bytes < 10_000 ? 4000 : bytes < MiB ? 1000 : 100
  return options.quick ? Math.ceil(full / 4) : full
}

/** One masked client text frame (RFC 6455 §5.2), RSV1 set when compressed. */
function clientFrame (payload, compressed) {
  const length = payload.length
  const head = length < 126 ? Buffer.from([0, 0x80 | length]) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  if (length >= 126 && length < 65536) { head[1] = 0x80 | 126; head.writeUInt16BE(length, 2) }
  if (length >= 65536) { head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(length), 2) }
  head[0] = 0x80 | (compressed ? 0x40 : 0) | 0x1
  const key = randomBytes(4)
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = payload[i] ^ key[i & 3]
  return Buffer.concat([head, key, masked])
}

/** A message compressed as permessage-deflate sends it without context takeover: sync flush, trailer cut. */
function deflateMessage (message) {
  const out = deflateRawSync(message, { finishFlush: constants.Z_SYNC_FLUSH })
  return out.subarray(0, out.length - 4)
}

/** Times `run` (which resolves once the fingerprint is known) over `rounds`; the first quarter warms up. */
async function measure (rounds, run) {
  const wall = []
  const cpu = []
  for (let round = 0; round < rounds; round++) {
    const usage = process.cpuUsage()
    const start = process.hrtime.bigint()
    await run()
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    const spent = process.cpuUsage(usage)
    if (round < rounds / 4) continue
    wall.push(ms)
    cpu.push((spent.user + spent.system) / 1000)
  }
  return { wall: median(wall), cpu: median(cpu) }
}

function pushReads (listener, frame) {
  const parser = new FrameParser(listener) // each message starts a frame: a parser per message reads alike
  for (let at = 0; at < frame.length; at += READ) parser.push(frame.subarray(at, at + READ))
}

async function main () {
  // Chat Completions calls never come over a WebSocket.
  const bodies = Object.entries(benchBodies()).filter(([name]) => !name.startsWith('chat') && (options.only === undefined || options.only.split(',').some((o) => name.includes(o))))
  console.log(`node ${process.version}; ${options.quick ? 'quick' : 'full'} run; ms per message, median\n`)
  console.log('| message | bytes | compressed bytes | headers, CPU | type only, CPU | plain, CPU | compressed, CPU | compressed, until known | HTTP tap alone, CPU |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const [name, body] of bodies) {
    const message = Buffer.concat([Buffer.from('{"type":"response.create",'), body.subarray(1)])
    const deflated = deflateMessage(message)
    const plainFrame = clientFrame(message, false)
    const compressedFrame = clientFrame(deflated, true)
    const rounds = roundsFor(message.length)
    const headersOnly = { onFrameStart () {}, onFramePayload () {}, onFrameEnd () {} }
    const off = await measure(rounds, async () => pushReads(headersOnly, plainFrame))
    // One reader per connection, as in the gateway: its inflater serves every message.
    const read = (frame, deflate, readsPrefixes = true) => {
      const requests = new ClientRequests(deflate, { readsPrefixes })
      return async () => {
        pushReads(requests.frames, frame)
        // Resolves once the message is read: with its fingerprint, or (type only) with none.
        if ((await requests.ofCurrentResponse() === null) === readsPrefixes) throw new Error(readsPrefixes ? 'no fingerprint' : 'a fingerprint')
        if (requests.idle) throw new Error('the response.create is not owed an answer')
        requests.answered()
      }
    }
    const typeOnly = await measure(rounds, read(plainFrame, undefined, false))
    const plain = await measure(rounds, read(plainFrame, undefined))
    const compressed = await measure(rounds, read(compressedFrame, { noContextTakeover: true }))
    const http = await measure(rounds, async () => {
      const tap = new PrefixFingerprint()
      for (let at = 0; at < body.length; at += READ) tap.push(body.subarray(at, at + READ))
      tap.result()
    })
    const ms = (x) => x.toFixed(3)
    console.log(`| ${name} | ${message.length.toLocaleString('en')} | ${deflated.length.toLocaleString('en')} | ${ms(off.cpu)} | ${ms(typeOnly.cpu)} | ${ms(plain.cpu)} | ${ms(compressed.cpu)} | ${ms(compressed.wall)} | ${ms(http.cpu)} |`)
  }
}

await main()
