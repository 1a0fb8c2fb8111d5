/**
 * Hop-by-hop header rules (RFC 9110 §7.6.1): these describe one connection, not the
 * message, so a proxy drops them, together with every header its `Connection` names.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade'
])

export function isHopByHop (lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName)
}

/**
 * Header names listed in a `Connection` value (`close`, `keep-alive`, or custom ones), lower-cased,
 * added to `seen`: a message may carry several `Connection` lines, and every one of them counts.
 */
export function connectionTokens (value: string | undefined, seen: Set<string> | undefined): Set<string> | undefined {
  if (value === undefined || value === '') return seen
  let tokens = seen
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') (tokens ??= new Set<string>()).add(name)
  }
  return tokens
}
