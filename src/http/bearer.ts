import { createHash } from 'node:crypto'

/** The token of an `Authorization: Bearer <token>` value; undefined for any other shape. */
export function bearerToken (authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1]
}

/** SHA-256 of a secret: compared with `timingSafeEqual`, or shortened into a name that can't be reversed. */
export function sha256 (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
