/**
 * The HTTP side of a WebSocket opening handshake (RFC 6455 §4): which upgrade requests are
 * WebSocket ones, the 101 the client gets back, and what compression the two ends agreed on.
 * Everything else in the handshake (Sec-WebSocket-Key/Accept, -Version, -Protocol,
 * -Extensions) passes through untouched, so the client and the upstream negotiate end to end.
 */
import type { IncomingMessage } from 'node:http'
import { clientResponseHeaders } from '../relay/response-headers.js'
import type { DeflateParams } from './message-inflater.js'

/** A GET whose Upgrade names `websocket`; other upgrades (h2c, …) are not WebSocket ones. */
export function isWebSocketUpgrade (req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false
  const upgrade = req.headers.upgrade
  return upgrade !== undefined && upgrade.split(',').some((token) => token.trim().toLowerCase() === 'websocket')
}

/**
 * The upstream's 101 as the client gets it: its headers in order and spelling, less hop-by-hop
 * ones, after the `Upgrade` and `Connection` that a 101 must carry.
 */
export function switchingProtocolsHead (rawHeaders: Buffer[] | string[]): Buffer {
  const upgrade = headerValues(rawHeaders, 'upgrade')[0] ?? 'websocket'
  const headers = clientResponseHeaders(rawHeaders)
  let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]!}: ${headers[i + 1]!}\r\n`
  return Buffer.from(head + '\r\n', 'latin1')
}

/**
 * The permessage-deflate (RFC 7692) the upstream's 101 accepted, as it applies to the
 * upstream's own messages; undefined when it accepted none, so its frames are plain.
 */
export function upstreamDeflate (rawHeaders: Buffer[] | string[]): DeflateParams | undefined {
  return agreedDeflate(rawHeaders, 'server_no_context_takeover')
}

/** The same agreement as it applies to the client's messages (`client_no_context_takeover`). */
export function clientDeflate (rawHeaders: Buffer[] | string[]): DeflateParams | undefined {
  return agreedDeflate(rawHeaders, 'client_no_context_takeover')
}

function agreedDeflate (rawHeaders: Buffer[] | string[], noTakeoverParam: string): DeflateParams | undefined {
  for (const value of headerValues(rawHeaders, 'sec-websocket-extensions')) {
    for (const extension of value.split(',')) {
      const [name = '', ...params] = extension.split(';').map((part) => part.trim().toLowerCase())
      if (name !== 'permessage-deflate') continue
      return { noContextTakeover: params.some((param) => param.split('=')[0]!.trim() === noTakeoverParam) }
    }
  }
  return undefined
}

function headerValues (rawHeaders: Buffer[] | string[], lowerName: string): string[] {
  const values: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toString('latin1').toLowerCase() === lowerName) values.push(rawHeaders[i + 1]!.toString('latin1'))
  }
  return values
}
