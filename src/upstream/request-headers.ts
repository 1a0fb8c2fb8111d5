import { connectionTokens, isHopByHop } from '../http/hop-by-hop.js'

/** Headers the gateway sets itself or that must not reach the upstream as the client sent them. */
const REPLACED = new Set([
  'host', // undici sets the upstream's
  'expect', // undici refuses it; Node has already answered 100-continue to the client
  'session-id',
  'session_id'
])

/**
 * The upstream request's headers, as a flat `[name, value, …]` list: the client's own,
 * in order and spelling, less hop-by-hop ones, plus the session under both spellings codex
 * has used and an `originator` when the client sent none.
 */
export function upstreamRequestHeaders (rawHeaders: string[], sessionId: string, defaultOriginator: string): string[] {
  const out: string[] = []
  let dropAlso: Set<string> | undefined
  let hasOriginator = false
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    const lower = name.toLowerCase()
    if (lower === 'connection') {
      dropAlso = connectionTokens(rawHeaders[i + 1], dropAlso)
      continue
    }
    if (isHopByHop(lower) || REPLACED.has(lower)) continue
    if (lower === 'originator') hasOriginator = true
    out.push(name, rawHeaders[i + 1] as string)
  }
  if (dropAlso !== undefined) dropListedByConnection(out, dropAlso)
  out.push('session_id', sessionId, 'session-id', sessionId)
  if (!hasOriginator) out.push('originator', defaultOriginator)
  return out
}

function dropListedByConnection (headers: string[], names: Set<string>): void {
  let write = 0
  for (let read = 0; read < headers.length; read += 2) {
    const name = headers[read] as string
    if (names.has(name.toLowerCase())) continue
    headers[write++] = name
    headers[write++] = headers[read + 1] as string
  }
  headers.length = write
}
