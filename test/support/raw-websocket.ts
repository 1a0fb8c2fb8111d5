/**
 * WebSocket ends written by hand on plain TCP sockets, for checking what the gateway relays
 * byte for byte: a client that sends its own handshake and frames, an upstream accept that
 * answers 101 itself, and a frame encoder.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { constants, createDeflateRaw, type DeflateRaw } from 'node:zlib'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export interface RawWebSocket {
  socket: Socket
  status: number
  /** Response header lines as written, names lower-cased. */
  headers: Array<[string, string]>
  /** Every byte received after the response head. */
  received: () => Buffer
  /** Resolves once at least `length` bytes have arrived after the head. */
  receivedAtLeast: (length: number) => Promise<Buffer>
  /** Resolves when the connection has closed. */
  closed: Promise<void>
}

/** Opens a connection, sends a WebSocket handshake for `path` with `headers`, and reads the answer's head. */
export async function rawWebSocket (port: number, path: string, headers: Record<string, string> = {}, early: Buffer = Buffer.alloc(0)): Promise<RawWebSocket> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)
  ]
  // `early` goes in the same write as the handshake: frames sent before the 101 came back.
  socket.write(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), early]))

  let buffer = Buffer.alloc(0)
  let headEnd = -1
  const waiters: Array<() => void> = []
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk])
    if (headEnd === -1) headEnd = buffer.indexOf('\r\n\r\n')
    for (const wake of waiters.splice(0)) wake()
  })
  let isClosed = false
  socket.on('close', () => {
    isClosed = true
    for (const wake of waiters.splice(0)) wake()
  })
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) {
      if (isClosed) throw new Error(`connection closed; received ${JSON.stringify(buffer.toString('latin1'))}`)
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  await until(() => headEnd !== -1)
  const [statusLine = '', ...headerLines] = buffer.subarray(0, headEnd).toString('latin1').split('\r\n')
  const body = (): Buffer => buffer.subarray(headEnd + 4)
  return {
    socket,
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0),
    headers: headerLines.map((line): [string, string] => {
      const colon = line.indexOf(':')
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
    }),
    received: body,
    receivedAtLeast: async (length) => {
      await until(() => body().length >= length)
      return body()
    },
    closed
  }
}

/**
 * Answers an upgrade on the upstream with a 101 written by hand (plus `extraHeaders`), then
 * collects every byte the socket receives (starting with `head`, what came with the handshake).
 */
export function acceptRaw (req: IncomingMessage, socket: Socket, head: Buffer, extraHeaders: string[] = [], firstFrames: Buffer = Buffer.alloc(0)): { received: () => Buffer, receivedAtLeast: (length: number) => Promise<Buffer>, ended: Promise<void> } {
  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key'] ?? ''}${GUID}`).digest('base64')
  // `firstFrames` go in the same write as the 101, as a server that speaks at once does.
  socket.write(Buffer.concat([Buffer.from([
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${accept}`,
    ...extraHeaders
  ].join('\r\n') + '\r\n\r\n', 'latin1'), firstFrames]))
  let buffer = Buffer.from(head)
  const waiters: Array<() => void> = []
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk])
    for (const wake of waiters.splice(0)) wake()
  })
  // A FIN from the gateway is answered with one, as a WebSocket server does.
  socket.on('end', () => socket.end())
  return {
    received: () => buffer,
    ended: new Promise((resolve) => socket.once('end', () => resolve())),
    receivedAtLeast: async (length) => {
      while (buffer.length < length) await new Promise<void>((resolve) => waiters.push(resolve))
      return buffer
    }
  }
}

export interface FrameSpec {
  opcode: number
  payload: Buffer | string
  fin?: boolean
  rsv1?: boolean
  /** Client frames must be masked. */
  masked?: boolean
}

/** One frame, with the shortest length encoding for its payload. */
export function encodeFrame ({ opcode, payload, fin = true, rsv1 = false, masked = false }: FrameSpec): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const first = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode
  const maskBit = masked ? 0x80 : 0
  let head: Buffer
  if (data.length < 126) {
    head = Buffer.from([first, maskBit | data.length])
  } else if (data.length < 65536) {
    head = Buffer.alloc(4)
    head[0] = first
    head[1] = maskBit | 126
    head.writeUInt16BE(data.length, 2)
  } else {
    head = Buffer.alloc(10)
    head[0] = first
    head[1] = maskBit | 127
    head.writeBigUInt64BE(BigInt(data.length), 2)
  }
  if (!masked) return Buffer.concat([head, data])
  const key = randomBytes(4)
  const out = Buffer.alloc(data.length)
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[i & 3]!
  return Buffer.concat([head, key, out])
}

/** Writes `bytes` in pieces of at most `size`, each its own write, so frames straddle TCP reads. */
export async function writeInPieces (socket: Socket, bytes: Buffer, size: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += size) {
    await new Promise<void>((resolve, reject) => socket.write(bytes.subarray(at, at + size), (err) => err ? reject(err) : resolve()))
  }
}

/** Compresses messages as a permessage-deflate sender does: sync flush, trailer stripped. */
export async function deflateMessages (texts: string[], contextTakeover: boolean): Promise<Buffer[]> {
  const out: Buffer[] = []
  let deflate: DeflateRaw | undefined
  for (const text of texts) {
    if (deflate === undefined || !contextTakeover) deflate = createDeflateRaw()
    const stream = deflate
    const chunks: Buffer[] = []
    const onData = (chunk: Buffer): void => { chunks.push(chunk) }
    stream.on('data', onData)
    stream.write(text)
    await new Promise<void>((resolve) => stream.flush(constants.Z_SYNC_FLUSH, () => resolve()))
    stream.off('data', onData)
    const data = Buffer.concat(chunks)
    out.push(data.subarray(0, data.length - 4))
  }
  return out
}
