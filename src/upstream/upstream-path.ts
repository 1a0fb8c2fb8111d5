/** The prefix clients put in their base URL; what follows it is forwarded. */
export const CLIENT_PREFIX = '/v1'

/** Where requests go, from `upstream.url`, worked out once at start. */
export interface UpstreamTarget {
  /** `https://api.openai.com` */
  origin: string
  /** `/v1`, without a trailing slash; `''` for a bare origin. */
  basePath: string
  /** `api-version=…` carried by `upstream.url`, appended to every upstream path; `''` when none. */
  query: string
}

export function upstreamTarget (url: URL): UpstreamTarget {
  return {
    origin: url.origin,
    basePath: url.pathname.replace(/\/+$/, ''),
    query: url.search.length > 1 ? url.search.slice(1) : ''
  }
}

/** True for the request targets the gateway forwards: `/v1` and everything under it. */
export function isProxyTarget (target: string): boolean {
  return target.startsWith(CLIENT_PREFIX) && (target.length === CLIENT_PREFIX.length || target[CLIENT_PREFIX.length] === '/' || target[CLIENT_PREFIX.length] === '?')
}

/**
 * Maps a client request target (`/v1/responses?x=1`) to the upstream's
 * (`{basePath}/responses?x=1`, plus `upstream.url`'s own query, e.g. Azure's api-version). The
 * url's query is a default: a parameter the client sets itself (an SDK's own api-version) keeps
 * the client's value, and is not sent twice. Returns undefined for a target that is not under `/v1` or that holds dot segments, which could
 * walk out of the upstream's base path. A fragment is dropped.
 */
export function upstreamPath (target: string, upstream: UpstreamTarget): string | undefined {
  const clientTarget = withoutFragment(target)
  if (!isProxyTarget(clientTarget)) return undefined
  const rest = clientTarget.slice(CLIENT_PREFIX.length)
  if (hasDotSegment(rest)) return undefined
  return underBase(rest, upstream)
}

/**
 * The request target of an upstream's health probe: `probe_path` under the base path, with
 * `upstream.url`'s query added as it is to every proxied request (Azure's api-version), so the
 * probe asks what requests ask. A parameter `probe_path` sets itself keeps the probe's value:
 * the url's is not sent beside it. A fragment is dropped. Worked out once, at start.
 */
export function probePath (probe: string, upstream: UpstreamTarget): string {
  return underBase(withoutFragment(probe), upstream)
}

/** A #fragment is the client's own business (RFC 9110 §4.2.4): it never goes upstream. */
function withoutFragment (target: string): string {
  const fragmentAt = target.indexOf('#')
  return fragmentAt === -1 ? target : target.slice(0, fragmentAt)
}

/** `rest` (a path with its own query, if any) under the base path, with the url's query as defaults. */
function underBase (rest: string, upstream: UpstreamTarget): string {
  if (upstream.query === '') return upstream.basePath + rest
  const queryAt = rest.indexOf('?')
  if (queryAt === -1) return `${upstream.basePath}${rest}?${upstream.query}`
  return withQuery(upstream.basePath + rest.slice(0, queryAt), rest.slice(queryAt + 1), upstream.query)
}

/** `path` with the `own` query's pairs, then those of `defaults` whose names `own` does not set. */
function withQuery (path: string, own: string, defaults: string): string {
  const ownPairs = own.split('&').filter((pair) => pair !== '')
  const ownNames = new Set(ownPairs.map(parameterName))
  const added = defaultPairs(defaults).filter(({ name }) => !ownNames.has(name)).map(({ pair }) => pair)
  const query = [...ownPairs, ...added].join('&')
  return query === '' ? path : `${path}?${query}`
}

/** Each upstream url's query, split and its names decoded once rather than per request. */
const splitDefaults = new Map<string, Array<{ pair: string, name: string }>>()

function defaultPairs (defaults: string): Array<{ pair: string, name: string }> {
  let pairs = splitDefaults.get(defaults)
  if (pairs === undefined) {
    pairs = defaults.split('&').filter((pair) => pair !== '').map((pair) => ({ pair, name: parameterName(pair) }))
    splitDefaults.set(defaults, pairs)
  }
  return pairs
}

/** A query pair's name as a server reads it (percent-decoded, `+` a space), for comparing names. */
function parameterName (pair: string): string {
  return new URLSearchParams(pair).keys().next().value ?? ''
}

/** True when the path part has a `.` or `..` segment, plainly or percent-encoded, or a backslash. */
export function hasDotSegment (target: string): boolean {
  const queryAt = target.indexOf('?')
  const path = queryAt === -1 ? target : target.slice(0, queryAt)
  // Fast exit for the usual path: no dot after a slash, nothing encoded, no backslash.
  if (!path.includes('/.') && !path.includes('%') && !path.includes('\\')) return false
  for (const segment of path.split(/[/\\]/)) {
    let decoded = segment
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      return true
    }
    if (decoded === '.' || decoded === '..' || decoded.includes('/') || decoded.includes('\\')) return true
  }
  return false
}

/** An absolute-form request target (`http://host/path`), what clients send a forward proxy (RFC 9112 §3.2.2). */
export function isAbsoluteForm (target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target)
}

/** The path part of a request target, without its query string (queries may carry keys). */
export function pathOf (target: string): string {
  const queryAt = target.indexOf('?')
  return queryAt === -1 ? target : target.slice(0, queryAt)
}
