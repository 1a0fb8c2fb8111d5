/**
 * How a setting is declared: its environment variable, its default and how a raw value
 * becomes a typed one (its YAML path is its place in the settings table).
 * `load-config.ts` applies them (defaults < YAML < environment); nothing else reads
 * `process.env`.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'

export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor (readonly key: string, problem: string) {
    super(`config ${key}: ${problem}`)
  }
}

/**
 * A setting that is valid but does nothing as configured: logged as a warn line at start
 * (build-gateway.ts), named and worded as a ConfigError is. Not an error, so a config that
 * started before still starts.
 */
export class ConfigWarning {
  readonly message: string
  constructor (readonly key: string, problem: string) {
    this.message = `config ${key}: ${problem}`
  }
}

/** YAML path → the key that set it (an env var or the YAML path itself); absent for a default. */
export type SetBy = ReadonlyMap<string, string>

/** A value as checks that span two settings name it: `server.port (PORT) 8080`, `… (its default)` when nobody set it. */
export function namedValue ([path, env]: readonly [string, string], value: number, setBy: SetBy): string {
  return `${path} (${env}) ${value}${setBy.has(path) ? '' : ' (its default)'}`
}

/**
 * Refuses a value longer than another it must fit in, blamed on the key that was set (`shorter`'s
 * first), naming both with where they came from: `… is longer than …, {why}: lower …, or raise … to at least N{orElse}`.
 */
export function refuseLonger (shorter: readonly [string, string], shorterValue: number, longer: readonly [string, string], longerValue: number, setBy: SetBy, why: string, orElse = ''): never {
  const key = setBy.get(shorter[0]) ?? setBy.get(longer[0]) ?? shorter[0]
  throw new ConfigError(key, `${namedValue(shorter, shorterValue, setBy)} is longer than ${namedValue(longer, longerValue, setBy)}, ` +
    `${why}: lower ${shorter[0]} (${shorter[1]}), or raise ${longer[0]} (${longer[1]}) to at least ${shorterValue}${orElse}`)
}

/** Turns a raw value (YAML scalar or environment string) into a typed one, or throws ConfigError. */
export type Parse<T> = (raw: unknown, key: string) => T

export interface Setting<T> {
  /** Environment variable that overrides the file. */
  env: string
  default: T
  parse: Parse<T>
}

export function setting<T> (env: string, defaultValue: T, parse: Parse<T>): Setting<T> {
  return { env, default: defaultValue, parse }
}

export function integer (min: number, max: number): Parse<number> {
  return (raw, key) => {
    const digits = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw)
    const value = typeof raw === 'number' ? raw : digits ? Number(raw) : NaN
    // Digits past 2^53 are a whole number too, only far out of range: say so, not "not a number".
    if (digits && !Number.isSafeInteger(value)) throw new ConfigError(key, `expected a number from ${min} to ${max}, got ${String(raw).trim()}`)
    if (!Number.isSafeInteger(value)) throw new ConfigError(key, `expected a whole number, got ${JSON.stringify(raw)}`)
    if (value < min || value > max) throw new ConfigError(key, `expected a number from ${min} to ${max}, got ${value}`)
    // "-0" is 0: as -0 it passed every comparison, and printed and compared (=== -1…) as 0 only by luck.
    return value === 0 ? 0 : value
  }
}

export function oneOf<const T extends string> (choices: readonly T[]): Parse<T> {
  return (raw, key) => {
    const value = typeof raw === 'string' ? raw.trim().toLowerCase() : raw
    if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T
    throw new ConfigError(key, `expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`)
  }
}

export function text ({ allowEmpty = false } = {}): Parse<string> {
  return (raw, key) => {
    if (typeof raw !== 'string' && typeof raw !== 'number') throw new ConfigError(key, `expected a string, got ${JSON.stringify(raw)}`)
    const value = String(raw).trim()
    if (!allowEmpty && value === '') throw new ConfigError(key, 'must not be empty')
    return value
  }
}

/** A value that goes into an HTTP header as is: visible ASCII, no spaces. */
export function headerToken (): Parse<string> {
  const parseText = text()
  return (raw, key) => {
    const value = parseText(raw, key)
    if (!/^[\x21-\x7e]+$/.test(value)) throw new ConfigError(key, 'must be printable ASCII without spaces')
    return value
  }
}

/**
 * An address to listen on: an IP address (IPv6 without brackets) or a host name. A value no name
 * can ever be (`0.0.0.0:8080`, `[::1]`, `http://…`) is refused here: at listen time it would exit
 * with status 1, which supervisors restart, as they should for a name that does not resolve yet.
 */
export function listenHost (): Parse<string> {
  const parseText = text()
  return (raw, key) => {
    const value = parseText(raw, key)
    // Labels of letters, digits, - and _ (Docker Compose service names), a root dot allowed.
    if (isIP(value) !== 0 || /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(value)) return value
    throw new ConfigError(key, `expected an IP address (IPv6 without [brackets]) or a host name, got ${JSON.stringify(value)}${/:\d+$/.test(value) ? '; the port goes in server.port (PORT)' : ''}`)
  }
}

export function httpUrl (): Parse<URL> {
  const parseText = text()
  return (raw, key) => {
    const value = parseText(raw, key)
    let url: URL
    try {
      url = new URL(value)
    } catch {
      throw new ConfigError(key, `not a URL: ${JSON.stringify(value)}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(key, `expected an http:// or https:// URL, got ${url.protocol}`)
    if (url.username !== '' || url.password !== '') throw new ConfigError(key, 'must not carry credentials')
    if (url.hash !== '') throw new ConfigError(key, 'must not have a #fragment')
    return url
  }
}

export function boolean (): Parse<boolean> {
  return (raw, key) => {
    if (typeof raw === 'boolean') return raw
    if (typeof raw === 'string') {
      const value = raw.trim().toLowerCase()
      if (['1', 'true', 'yes', 'on'].includes(value)) return true
      if (['0', 'false', 'no', 'off'].includes(value)) return false
    }
    throw new ConfigError(key, `expected true or false, got ${JSON.stringify(raw)}`)
  }
}

/** `redis://…` or `rediss://…`, its path a database number if any; '' means "no Redis". */
export function redisUrl (): Parse<string> {
  const parseText = text({ allowEmpty: true })
  return (raw, key) => {
    const value = parseText(raw, key)
    if (value === '') return value
    let url: URL
    try {
      url = new URL(value)
    } catch {
      throw new ConfigError(key, 'not a URL')
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError(key, `expected a redis:// or rediss:// URL, got ${url.protocol}`)
    // Anything else there would quietly mean database 0: another database than the one meant.
    if (!/^\/?(\d+)?$/.test(url.pathname)) throw new ConfigError(key, `the path must be a database number (redis://host:6379/2), got ${JSON.stringify(url.pathname)}`)
    // The store decodes them; a bare % (a password not percent-encoded) would throw there, unnamed.
    if (!decodes(url.username) || !decodes(url.password)) throw new ConfigError(key, 'its user or password has a % that starts no escape (%XX): write % as %25, or set redis.password (REDIS_PASSWORD)')
    return value
  }
}

/** Whether a URL's percent-encoded part decodes. */
function decodes (part: string): boolean {
  try {
    decodeURIComponent(part)
    return true
  } catch {
    return false
  }
}

/** A key or token: any non-space printable ASCII; '' when unset. Never echoed in errors. */
export function secret (): Parse<string> {
  return (raw, key) => {
    if (typeof raw !== 'string' && typeof raw !== 'number') throw new ConfigError(key, 'expected a string')
    const value = String(raw).trim()
    if (value !== '' && !/^[\x21-\x7e]+$/.test(value)) throw new ConfigError(key, 'must be printable ASCII without spaces')
    return value
  }
}

/** A comma-separated string (environment) or a YAML list of secrets. */
export function list (): Parse<string[]> {
  const parseSecret = secret()
  return (raw, key) => {
    const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined
    if (items === undefined) throw new ConfigError(key, 'expected a list or a comma-separated string')
    return items.map((item) => parseSecret(item, key)).filter((item) => item !== '')
  }
}

/** A structured value: as YAML gave it, or parsed from the JSON an environment variable holds. */
export function jsonFromEnvironment (raw: unknown, key: string, expected: string): unknown {
  if (typeof raw !== 'string') return raw
  try {
    return JSON.parse(raw)
  } catch {
    throw new ConfigError(key, expected)
  }
}

/**
 * Headers a configured header may not name: they frame the request's body or belong to one
 * connection (hop-by-hop), so the gateway and undici set them per request, and Host comes from
 * the upstream's url. Sent on every request, some make undici refuse it (expect,
 * transfer-encoding, keep-alive, upgrade) or the body not match (content-length): each request
 * fails with 502, and with several upstreams each is ejected in turn; the rest misdirect it or
 * break WebSocket handshakes. (The proxy's own hop-by-hop list is in src/http/hop-by-hop.ts.)
 */
const REFUSED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'expect', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'])

/** Header name → string: a YAML mapping, or a JSON object in the environment. */
export function headerMap (): Parse<Record<string, string>> {
  return (raw, key) => {
    const value = jsonFromEnvironment(raw, key, 'expected a JSON object of header names to values')
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(key, 'expected a mapping of header names to values')
    const out: Record<string, string> = {}
    for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new ConfigError(key, `invalid header name ${JSON.stringify(name)}`)
      if (REFUSED_HEADERS.has(name.toLowerCase())) throw new ConfigError(`${key}.${name}`, `${name} cannot be configured: it frames the request or belongs to one connection, so it is set per request (and a host belongs in the upstream's url)`)
      if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(`${key}.${name}`, 'expected a string')
      // Any control character but tab would fail every upstream request, so refuse it here.
      if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(String(v))) throw new ConfigError(`${key}.${name}`, 'must not contain control characters (a line break?)')
      // Header names ignore case: `X-Team` and `x-team` are one header, and one value would be dropped.
      if (Object.hasOwn(out, name.toLowerCase())) throw new ConfigError(`${key}.${name}`, `names the header ${name.toLowerCase()} a second time (header names ignore case): give it once`)
      out[name.toLowerCase()] = String(v)
    }
    return out
  }
}

/**
 * `host:port` addresses (`[v6]:port` too; a host name may hold `_`, as Docker Compose service
 * names do): a YAML list or a comma-separated string; [] when unset.
 */
export function hostPorts (): Parse<string[]> {
  return (raw, key) => {
    const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined
    if (items === undefined) throw new ConfigError(key, 'expected a list of host:port or a comma-separated string')
    return items.map((item) => String(item).trim()).filter((item) => item !== '').map((item) => {
      const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(item)
      if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) throw new ConfigError(key, `expected host:port, got ${JSON.stringify(item)}`)
      return item
    })
  }
}

/** A path to a (small) file that can be read now: checked at start, not at first use; '' when unset. */
export function readableFile (): Parse<string> {
  const parseText = text({ allowEmpty: true })
  return (raw, key) => {
    const path = parseText(raw, key)
    if (path === '') return path
    try {
      readFileSync(path) // a directory passes an access check but not this
    } catch (err) {
      throw new ConfigError(key, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
    return path
  }
}
