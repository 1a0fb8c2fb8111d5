import { v7 as uuidv7 } from 'uuid'

const SANE_SESSION_ID = /^[\x21-\x7e]{1,256}$/

/**
 * A client's session id is forwarded as a header value, so it must be something every
 * proxy on the way keeps intact: 1 to 256 visible ASCII characters, no spaces.
 */
export function isSaneSessionId (value: string): boolean {
  return SANE_SESSION_ID.test(value)
}

/** A new session id: a UUIDv7, time-ordered like the ids codex makes. */
export function newSessionId (): string {
  return uuidv7()
}
