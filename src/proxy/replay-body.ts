import type { IncomingMessage } from 'node:http'
import { errors } from '../errors.js'
import { hasBody } from '../http/request-framing.js'
import { drainRest, readRequestBody } from './client-body.js'

/** A request body as undici sends it, and whether it can be sent again to another upstream. */
export interface ReplayableBody {
  body: Buffer | AsyncIterable<Buffer> | IncomingMessage | null
  /**
   * Asked when an attempt failed, `unsent` when it failed before connecting (nothing of the
   * request went out): a body held in memory within the replay limit always can be; a larger
   * one, or a streamed one, only then.
   */
  replayable: (unsent: boolean) => boolean
}

export const ALWAYS = (): boolean => true
export const NEVER = (): boolean => false
/** Only when the attempt failed before connecting: nothing of the request went out. */
export const UNSENT = (unsent: boolean): boolean => unsent

/**
 * The client's own stream, past the replay limit: it can go to another upstream only when the
 * first refused the connection or did not accept it in time, since undici takes a body only
 * once connected. Once connected, undici holds the stream even before reading from it, and a
 * retry's abort destroys it (with the client's socket): an answer such as a 503 on the headers
 * alone is relayed instead.
 */
function whileUnsent (req: IncomingMessage): (unsent: boolean) => boolean {
  return (unsent) => unsent && !req.readableDidRead && !req.destroyed
}

/**
 * With several upstreams a request that fails before answering is sent to the next one, which
 * needs its body again: bodies up to `replayLimit` are read into memory first (held while the
 * attempts run). A larger body streams through once, as with one upstream, and is retried only
 * when its attempt failed before connecting (whileUnsent).
 * A chunked body is read up to the limit; if it goes on past it, what was read is sent first
 * and the rest streams behind it (still held to `bodyLimit`).
 */
export async function replayableBody (req: IncomingMessage, replayLimit: number, bodyLimit: number): Promise<ReplayableBody> {
  if (!hasBody(req)) return { body: null, replayable: ALWAYS }
  const declared = req.headers['content-length']
  if (declared !== undefined) {
    if (Number(declared) > replayLimit) return { body: req, replayable: whileUnsent(req) }
    return { body: await readRequestBody(req, bodyLimit), replayable: ALWAYS }
  }
  const iterator = req.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>
  const head: Buffer[] = []
  let size = 0
  for (;;) {
    const next = await iterator.next()
    if (next.done === true) return { body: Buffer.concat(head, size), replayable: ALWAYS }
    size += next.value.length
    if (size > bodyLimit) {
      await iterator.return?.() // lets go of the body, so that it can be drained
      drainRest(req)
      throw errors.bodyTooLarge(bodyLimit)
    }
    head.push(next.value)
    if (size > replayLimit) return { body: headThenRest(head, size, iterator, req, bodyLimit), replayable: NEVER }
  }
}

async function * headThenRest (head: Buffer[], headSize: number, rest: AsyncIterator<Buffer>, req: IncomingMessage, bodyLimit: number): AsyncGenerator<Buffer> {
  try {
    yield * head
    let size = headSize
    for (let next = await rest.next(); next.done !== true; next = await rest.next()) {
      size += next.value.length
      if (size > bodyLimit) throw errors.bodyTooLarge(bodyLimit)
      yield next.value
    }
  } finally {
    // Too large, or undici let go (the upstream answered or failed first): the rest drains.
    await rest.return?.()
    drainRest(req)
  }
}
