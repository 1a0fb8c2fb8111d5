/**
 * A raw HTTP/1.1 client on a plain TCP socket, for requests Node's and undici's clients
 * refuse to send (control characters in headers, `..` paths, absolute-form targets,
 * smuggling-shaped framing, garbage) and for reading response header lines exactly as sent.
 */
import { connect } from 'node:net'

export interface RawResponse {
  status: number
  reason: string
  /** Header lines in the order and spelling the server wrote them. */
  headers: Array<[string, string]>
  body: Buffer
}

export interface RawExchange {
  /** Every response the server wrote on the connection, interim (1xx) ones included. */
  responses: RawResponse[]
  /** The final response: the last one written. */
  response: RawResponse
  /** Every byte the server wrote. */
  bytes: Buffer
}

/**
 * Writes `request` as is on a new connection to 127.0.0.1:`port` and collects what comes back
 * until the server closes the connection (so it resolving shows the server did close it).
 * Well-formed requests should carry `Connection: close`, so the server closes once it has answered.
 */
export async function rawExchange (port: number, request: string | Buffer): Promise<RawExchange> {
  const bytes = await rawBytes(port, request)
  const responses = parseResponses(bytes)
  const response = responses.at(-1)
  if (response === undefined) throw new Error('the server closed the connection without a response')
  return { responses, response, bytes }
}

/** Like `rawExchange`, but returns the bytes unparsed: for when there may be no response at all. */
export async function rawBytes (port: number, request: string | Buffer): Promise<Buffer> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    // The server may answer and close while the request is still being written (EPIPE,
    // ECONNRESET); what it wrote before that is the answer.
    socket.on('error', () => {})
    socket.on('close', () => resolve(Buffer.concat(chunks)))
    socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request)
  })
}

/** A raw connection kept open: requests written in steps, each response read as it completes. */
export interface RawConnection {
  write: (data: string | Buffer) => void
  /** The next whole response (with `content-length`, chunked, or bodiless); rejects if the connection closes first. */
  nextResponse: () => Promise<RawResponse>
  destroy: () => void
}

export function rawConnection (port: number): RawConnection {
  const socket = connect(port, '127.0.0.1')
  let bytes = Buffer.alloc(0)
  let closed = false
  let waiter: { resolve: (r: RawResponse) => void, reject: (e: Error) => void } | undefined
  const settle = (): void => {
    if (waiter === undefined) return
    const end = responseEnd(bytes)
    if (end !== undefined) {
      const [response] = parseResponses(bytes.subarray(0, end))
      bytes = bytes.subarray(end)
      const { resolve } = waiter
      waiter = undefined
      resolve(response!)
    } else if (closed) {
      waiter.reject(new Error(`the connection closed before a whole response: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`))
    }
  }
  socket.on('data', (chunk: Buffer) => { bytes = Buffer.concat([bytes, chunk]); settle() })
  socket.on('error', () => {})
  socket.on('close', () => { closed = true; settle() })
  return {
    write: (data) => { socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data) },
    nextResponse: async () => await new Promise((resolve, reject) => { waiter = { resolve, reject }; settle() }),
    destroy: () => { socket.destroy() }
  }
}

/** Where the first response in `bytes` ends, or undefined while it is incomplete. */
function responseEnd (bytes: Buffer): number | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n', 0, 'latin1')
  if (headEnd === -1) return undefined
  const head = bytes.subarray(0, headEnd).toString('latin1')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1])
  if (status < 200 || status === 204 || status === 304) return headEnd + 4
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    let at = headEnd + 4
    for (;;) {
      const lineEnd = bytes.indexOf('\r\n', at, 'latin1')
      if (lineEnd === -1) return undefined
      const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16)
      if (size === 0) {
        const end = bytes.indexOf('\r\n\r\n', lineEnd - 2, 'latin1')
        return end === -1 ? undefined : end + 4
      }
      at = lineEnd + 2 + size + 2
      if (at > bytes.length) return undefined
    }
  }
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1]
  const end = headEnd + 4 + Number(length ?? 0)
  return end <= bytes.length ? end : undefined
}

/** Joins request lines with CRLF and ends the header block. */
export function rawRequest (...lines: string[]): string {
  return lines.join('\r\n') + '\r\n\r\n'
}

/** The first value of header `name` (case-insensitive), or undefined. */
export function headerOf (response: RawResponse, name: string): string | undefined {
  return headersNamed(response, name)[0]
}

/** Every value of header `name` (case-insensitive), in order. */
export function headersNamed (response: RawResponse, name: string): string[] {
  const lower = name.toLowerCase()
  return response.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v)
}

function parseResponses (bytes: Buffer): RawResponse[] {
  const responses: RawResponse[] = []
  let at = 0
  while (at < bytes.length) {
    const headEnd = bytes.indexOf('\r\n\r\n', at, 'latin1')
    if (headEnd === -1) throw new Error(`incomplete response head: ${JSON.stringify(bytes.subarray(at).toString('latin1'))}`)
    const [statusLine = '', ...lines] = bytes.subarray(at, headEnd).toString('latin1').split('\r\n')
    const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine)
    if (match === null) throw new Error(`not a status line: ${JSON.stringify(statusLine)}`)
    const headers = lines.map((line): [string, string] => {
      const colon = line.indexOf(':')
      return [line.slice(0, colon), line.slice(colon + 1).trim()]
    })
    const response: RawResponse = { status: Number(match[1]), reason: match[2] ?? '', headers, body: Buffer.alloc(0) }
    at = headEnd + 4
    const length = headerOf(response, 'content-length')
    if (response.status < 200 || response.status === 204 || response.status === 304) {
      // no body
    } else if (headerOf(response, 'transfer-encoding')?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = []
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', at, 'latin1')
        if (lineEnd === -1) throw new Error('truncated chunked body')
        const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16)
        at = lineEnd + 2
        if (size === 0) {
          at = bytes.indexOf('\r\n\r\n', at - 2, 'latin1') + 4
          break
        }
        parts.push(bytes.subarray(at, at + size))
        at += size + 2
      }
      response.body = Buffer.concat(parts)
    } else if (length !== undefined) {
      response.body = bytes.subarray(at, at + Number(length))
      at += Number(length)
    } else {
      response.body = bytes.subarray(at)
      at = bytes.length
    }
    responses.push(response)
  }
  return responses
}
