/**
 * An upstream on a plain TCP server, for answers Node's HTTP server will not give: malformed
 * status lines, and a keep-alive connection dropped exactly as the next request arrives on it.
 * It parses requests itself (content-length bodies only, which is what the gateway sends for
 * a client body with a length) and counts, per connection, the requests it has seen.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

export interface RawRequest {
  method: string
  target: string
  /** Lower-cased names. */
  headers: Record<string, string>
  body: Buffer
  /** Which connection it came on (0 for the first one accepted) and its place on it (0 first). */
  connection: number
  index: number
}

export interface RawUpstreamHandlers {
  /**
   * The first bytes of a request have arrived (before the rest of it). Return 'destroy' to drop
   * the connection there and then, without reading or answering the request.
   */
  onRequestStart?: (at: { connection: number, index: number }) => 'destroy' | undefined
  /** A whole request has arrived: answer on `socket`, or destroy it. */
  onRequest: (request: RawRequest, socket: Socket) => void
}

export interface RawUpstream {
  /** `http://127.0.0.1:PORT/v1`, for UPSTREAM_URL. */
  url: string
  /** Every whole request received, in order. */
  requests: RawRequest[]
  /** Connections accepted so far. */
  connections: () => number
  /** Resolves once every connection accepted so far has closed. */
  allClosed: () => Promise<void>
  close: () => Promise<void>
}

export async function startRawUpstream (handlers: RawUpstreamHandlers): Promise<RawUpstream> {
  const requests: RawRequest[] = []
  const sockets = new Set<Socket>()
  const closed: Array<Promise<void>> = []
  let accepted = 0

  const server: Server = createServer((socket) => {
    const connection = accepted++
    sockets.add(socket)
    closed.push(new Promise((resolve) => socket.once('close', () => { sockets.delete(socket); resolve() })))
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    let index = 0
    let started = false
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      for (;;) {
        if (buffered.length === 0 || socket.destroyed) return
        if (!started) {
          started = true
          if (handlers.onRequestStart?.({ connection, index }) === 'destroy') {
            socket.destroy()
            return
          }
        }
        const headEnd = buffered.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const [requestLine = '', ...lines] = buffered.subarray(0, headEnd).toString('latin1').split('\r\n')
        const headers: Record<string, string> = {}
        for (const line of lines) {
          const colon = line.indexOf(':')
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
        }
        const length = Number(headers['content-length'] ?? 0)
        if (buffered.length < headEnd + 4 + length) return
        const [method = '', target = ''] = requestLine.split(' ')
        const request: RawRequest = { method, target, headers, body: buffered.subarray(headEnd + 4, headEnd + 4 + length), connection, index }
        buffered = buffered.subarray(headEnd + 4 + length)
        index++
        started = false
        requests.push(request)
        handlers.onRequest(request, socket)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    connections: () => accepted,
    allClosed: async () => { await Promise.all(closed) },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** A well-formed keep-alive answer with a JSON body. */
export function jsonAnswer (body: unknown, status = 200): string {
  const text = JSON.stringify(body)
  return `HTTP/1.1 ${status} OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: keep-alive\r\n\r\n${text}`
}
