/**
 * One HTTP exchange through the gateway, as the soak's clients make it: the request built from
 * a spec, the body read to its end or until the client leaves, and what happened, never thrown.
 */
import { request } from 'undici'
import { requestBody } from './payloads.mjs'

/** No exchange of the soak takes this long; one that does counts as a `timeout` error. */
export const EXCHANGE_TIMEOUT_MS = 60_000

/** Microseconds on the machine's monotonic clock: comparable with the upstream process's. */
export const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

/**
 * One HTTP exchange through the gateway, body read to its end (or until `abortAfter` bytes,
 * when the client leaves). Never throws: the error, if any, is in the result.
 */
export async function exchange (ctx, spec, { method = 'POST', path = '/v1/responses', session, reset = false, extra = {}, abortAfter, onChunk } = {}) {
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; controller.abort() }, EXCHANGE_TIMEOUT_MS)
  const headers = { 'x-soak-id': spec.id }
  if (method === 'POST') headers['content-type'] = 'application/json'
  if (session !== undefined) headers['session-id'] = session
  const chunks = []
  let received = 0
  let aborted = false
  let lastByteAt
  const result = { status: 0, headers: {}, error: undefined }
  ctx.tally.httpRequests++
  try {
    const res = await request(ctx.origin + path, {
      method,
      headers,
      body: method === 'POST' ? requestBody(spec, extra) : undefined,
      dispatcher: ctx.agent,
      signal: controller.signal,
      reset
    })
    result.status = res.statusCode
    result.headers = res.headers
    for await (const chunk of res.body) {
      chunks.push(chunk)
      received += chunk.length
      lastByteAt = performance.now()
      if (abortAfter !== undefined && received >= abortAfter) {
        ctx.tally.clientAborts.set(spec.id, monotonicMicros())
        aborted = true
        controller.abort()
        break
      }
      if (onChunk !== undefined) await onChunk(received)
    }
  } catch (err) {
    if (!aborted) result.error = err
  } finally {
    clearTimeout(timer)
  }
  return { ...result, received: Buffer.concat(chunks), aborted, timedOut, lastByteAt, endedAt: performance.now() }
}

