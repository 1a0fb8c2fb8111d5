/**
 * A bounded `route` label for a client path: ids become `{id}`, unknown resources under /v1
 * `/v1/{other}` and paths outside /v1 (WebSocket upgrades refused there) `{other}`, so a
 * metric never gets a series per response id or per typo.
 */
const RESOURCES = new Set([
  'responses', 'models', 'chat', 'completions', 'embeddings', 'files', 'uploads', 'batches',
  'conversations', 'images', 'audio', 'moderations', 'vector_stores', 'fine_tuning', 'realtime', 'containers'
])
// `responses/compact` (codex's remote compaction) and `responses/input_tokens` are endpoints, not ids.
const NESTED = new Set(['chat/completions', 'responses/compact', 'responses/input_tokens', 'audio/speech', 'audio/transcriptions', 'audio/translations', 'images/generations', 'images/edits', 'images/variations', 'fine_tuning/jobs'])
const ACTIONS = new Set(['cancel', 'content', 'input_items', 'parts', 'complete', 'items', 'files', 'events', 'checkpoints'])

// Clients call a handful of paths over and over: remember their labels, up to a bound.
const cache = new Map<string, string>()
const CACHE_MAX = 1024

export function routeLabel (path: string): string {
  let label = cache.get(path)
  if (label === undefined) {
    label = labelFor(path)
    if (cache.size >= CACHE_MAX) cache.clear()
    cache.set(path, label)
  }
  return label
}

function labelFor (path: string): string {
  // No query string. HTTP requests are counted only under /v1; refused upgrades on any path.
  if (path !== '/v1' && !path.startsWith('/v1/')) return '{other}'
  const segments = path.split('/').slice(2).filter((s) => s !== '')
  const resource = segments[0]
  if (resource === undefined) return '/v1'
  if (!RESOURCES.has(resource)) return '/v1/{other}'
  let label = `/v1/${resource}`
  let i = 1
  const pair = segments[1] === undefined ? undefined : `${resource}/${segments[1]}`
  if (pair !== undefined && NESTED.has(pair)) {
    label = `/v1/${pair}`
    i = 2
  }
  for (; i < segments.length && i < 4; i++) label += ACTIONS.has(segments[i]!) ? `/${segments[i]!}` : '/{id}'
  return label
}
