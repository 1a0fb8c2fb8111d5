import type { IncomingMessage } from 'node:http'
import { errors } from '../errors.js'

// The client's request body: whether it can be read, and reading it (whether there is one: http/request-framing.ts).

/**
 * Reads a whole request body into one buffer (the chunks joined once, at their end: never
 * allocated from a `content-length` the client may not keep), for the few requests whose
 * session depends on it. Rejects with `body_too_large` past
 * `limitBytes` and with the stream's error when the client goes away mid-body.
 */
export async function readRequestBody (req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (declared > limitBytes) throw errors.bodyTooLarge(limitBytes)
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limitBytes) {
        cleanup()
        drainRest(req) // the rest passes into nothing, so the client can read the 413
        reject(errors.bodyTooLarge(limitBytes))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    // 'aborted' comes before 'error': a request the gateway stopped (a request timeout) says why in `errored`.
    const onAborted = (): void => onError(req.errored ?? new Error('client aborted the request body'))
    const cleanup = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
  })
}

/**
 * A chunked request body streamed upstream, cut off with `body_too_large` once it passes
 * `limitBytes` (a `content-length` body is judged before it is sent). undici then aborts the
 * upstream request and the relay answers 413. However the reading stops (too large, or undici
 * let go: the upstream answered or failed first), the rest of the body is drained.
 */
export async function * limitedBody (req: IncomingMessage, limitBytes: number, onChunk?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  let size = 0
  try {
    // destroyOnReturn false: stopping early must not destroy the client's socket before the answer.
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limitBytes) throw errors.bodyTooLarge(limitBytes)
      onChunk?.(chunk)
      yield chunk
    }
  } finally {
    drainRest(req)
  }
}

/**
 * Lets the rest of a body the gateway stopped reading pass into nothing, so a client still
 * sending can read its answer. Only once the reader has let go: while an iterator's 'readable'
 * listener is attached, `resume()` does nothing (here, the `for await` has closed it by now).
 */
export function drainRest (req: IncomingMessage): void {
  if (!req.readableEnded) req.resume()
}

/** JSON the gateway can read as is: a JSON media type and no content-encoding. */
export function isPlainJson (req: IncomingMessage): boolean {
  const type = req.headers['content-type']
  if (type === undefined || !type.toLowerCase().includes('json')) return false
  const encoding = req.headers['content-encoding']
  return encoding === undefined || encoding.toLowerCase() === 'identity'
}
