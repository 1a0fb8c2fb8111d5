import type { SessionFields } from './body-fields.js'

/** Endpoints under `/v1/responses/` that are not a stored response's id. */
const RESPONSE_ENDPOINTS = new Set(['compact', 'input_tokens'])

/**
 * The lineage a request target names by itself: a stored response (`/v1/responses/{id}`, its
 * `/cancel` and `/input_items`) or a conversation (`/v1/conversations/{id}` and its `/items`).
 * Such a request (background mode's polling, a cancel, a conversation's items) must reach the
 * upstream that holds what it names: with upstreams in different accounts, any other answers
 * 404. Undefined for every other target. `path` has no query.
 */
export function lineageOfTarget (path: string): SessionFields | undefined {
  if (path.startsWith('/v1/responses/')) {
    const id = idSegment(path, '/v1/responses/'.length)
    return id === undefined || RESPONSE_ENDPOINTS.has(id) ? undefined : { previousResponseId: id }
  }
  if (path.startsWith('/v1/conversations/')) {
    const id = idSegment(path, '/v1/conversations/'.length)
    return id === undefined ? undefined : { conversation: id }
  }
  return undefined
}

/** The path segment from `start` to the next `/`, percent-decoded; undefined when empty or undecodable. */
function idSegment (path: string, start: number): string | undefined {
  const end = path.indexOf('/', start)
  const raw = path.slice(start, end === -1 ? undefined : end)
  if (raw === '') return undefined
  if (!raw.includes('%')) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}
