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

/** Header names listed in a `Connection` value (`close`, `keep-alive`, or custom ones), lower-cased. */
export function connectionTokens (value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === '') return undefined
  const tokens = new Set<string>()
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name)
  }
  return tokens.size === 0 ? undefined : tokens
}
