import type { IncomingHttpHeaders } from 'node:http'
import { v5 as uuidv5 } from 'uuid'
import { errors } from '../errors.js'
import type { TokenUsage } from './session-usage.js'
import type { SessionFields } from './body-fields.js'
import { isSaneSessionId, newSessionId } from './session-id.js'
import { lineageKey, type SessionStore } from './session-store.js'

/** How a request's session was decided, in order of precedence. */
export type SessionSource = 'header' | 'previous_response' | 'conversation' | 'prompt_cache_key' | 'connection'

/** Holds a request's lineage keys until an upstream has served it (the request's Exchange). */
export interface LineageBinding {
  bindWhenServed (keys: readonly string[]): void
}

export interface Session {
  id: string
  source: SessionSource
}

// Fixed namespace for ids derived from conversation ids and prompt cache keys: the same key
// gives the same session on every replica, even before the store has heard of it.
const DERIVED_ID_NAMESPACE = '6f1c2b1e-4f43-4d0a-9d43-2b5b8f0e7a10'

/**
 * Decides which session a request belongs to:
 *  1. the client's own `session-id` (or older `session_id`) header, when sane;
 *  2. `previous_response_id` → the session of the response it names;
 *  3. `conversation` → one session per conversation;
 *  4. `prompt_cache_key` → one session per key;
 *  5. otherwise the session bound to the client's connection, made on its first request.
 * Whatever decided it, the request's lineage keys that no other session owns are bound to the
 * session once an upstream has served the request (`fromBody`), and so are the response ids it
 * produces (`learnResponse`), so any rule finds it again later. A key bound to one session is
 * never rebound to another, but for a response id a request named before it was learned: it
 * goes to the session that produced it.
 */
export class SessionResolver {
  // Keyed weakly by the socket, so a connection's session goes when the connection does.
  readonly #byConnection = new WeakMap<object, string>()
  readonly #store: SessionStore
  readonly #groupOf: ((upstream: string) => string | undefined) | undefined

  /**
   * `groupOf` (upstreams in several groups only: a response exists only in the group that
   * produced it): an upstream's group, so each response's and conversation's is kept.
   */
  constructor (store: SessionStore, { groupOf }: { groupOf?: ((upstream: string) => string | undefined) | undefined } = {}) {
    this.#store = store
    this.#groupOf = groupOf
  }

  /**
   * Rule 1. Throws the `invalid_session_id` GatewayError for an insane client id: it is
   * never forwarded. `session-id` wins over `session_id` (codex moved to the hyphen because
   * proxies drop underscores); an empty header counts as absent.
   */
  fromHeaders (headers: IncomingHttpHeaders): Session | undefined {
    for (const name of ['session-id', 'session_id'] as const) {
      const value = headers[name]
      if (value === undefined || value === '') continue
      // Node joins repeated unknown headers with ", ", which the sanity check refuses.
      if (typeof value !== 'string' || !isSaneSessionId(value)) throw errors.invalidSessionId(name)
      return { id: value, source: 'header' }
    }
    return undefined
  }

  /**
   * Rules 2 to 5, from the fields found in a JSON body. The request's lineage keys are bound to
   * the session only once an upstream has served it (`binding`, then `bindLineage`): a request
   * the upstream refused (a key it does not know, in pass-through mode; any 4xx) binds nothing.
   */
  async fromBody (fields: SessionFields, connection: object, binding: LineageBinding): Promise<Session> {
    const keys = lineageKeys(fields)
    if (keys.length === 0) return this.fromConnection(connection)

    const known = await this.#store.lookup(keys)
    const session = pickKnown(keys, known) ?? derive(fields) ?? this.fromConnection(connection)
    // A key another session owns stays with it: this request's lineage decides this request
    // only, so naming someone's conversation beside your own response id takes nothing over.
    // Keys already ours are bound again to renew their idle TTL. The store enforces it too.
    const ours = keys.filter((_, i) => known[i] === undefined || known[i] === session.id)
    if (ours.length > 0) binding.bindWhenServed(ours)
    return session
  }

  /** Binds a served request's lineage `keys` to its session (fromBody). */
  bindLineage (keys: readonly string[], sessionId: string): void {
    this.#store.bind(keys, sessionId)
  }

  /**
   * Rules 2 to 5 for a request whose target names a stored response or a conversation
   * (`lineageOfTarget`): the session that owns it, so the request reaches its upstream. Looked
   * up only: naming an id in a path binds nothing (a GET of someone's id takes nothing over).
   */
  async fromTarget (fields: SessionFields, connection: object): Promise<Session> {
    const keys = lineageKeys(fields)
    const known = await this.#store.lookup(keys)
    return pickKnown(keys, known) ?? derive(fields) ?? this.fromConnection(connection)
  }

  /** Rule 5: one session per client connection. */
  fromConnection (connection: object): Session {
    let id = this.#byConnection.get(connection)
    if (id === undefined) {
      id = newSessionId()
      this.#byConnection.set(connection, id)
    }
    return { id, source: 'connection' }
  }

  /** The upstream `sessionId` is bound to, if any (several upstreams only). */
  upstreamOf (sessionId: string): string | undefined | Promise<string | undefined> {
    return this.#store.upstreamOf(sessionId)
  }

  /**
   * Binds `sessionId` to the upstream that served it, so its next requests go there directly:
   * a `move` from the upstream it was bound to, or its first binding.
   */
  bindUpstream (sessionId: string, upstream: string, move: boolean): void {
    this.#store.bindUpstream(sessionId, upstream, move)
  }

  /** Counts a finished request and its tokens toward the session's usage. */
  recordUsage (sessionId: string, tokens: TokenUsage): void {
    this.#store.recordUsage(sessionId, tokens, Date.now())
  }

  /**
   * Remembers that `responseId` belongs to `sessionId`, for later `previous_response_id`s: the
   * session that produced it, even over one whose request named it before it was learned; and,
   * when origins are kept, that the group of `upstream` (the one that answered) holds it.
   */
  learnResponse (sessionId: string, responseId: string, upstream: string | undefined): void {
    const key = lineageKey.response(responseId)
    this.#store.bindProduced(key, sessionId)
    const group = this.#groupOfUpstream(upstream)
    if (group !== undefined) this.#store.bindOrigin(key, group)
  }

  /**
   * A conversation was created on `upstream` (POST /v1/conversations; origins kept only): it is
   * bound to its own session (the one its requests derive) with that upstream's group as its
   * origin, so they reach the group that holds it, not their session's rendezvous choice.
   */
  learnConversation (conversationId: string, upstream: string | undefined): void {
    const group = this.#groupOfUpstream(upstream)
    if (group === undefined) return
    const key = lineageKey.conversation(conversationId)
    this.#store.bindProduced(key, conversationSessionId(conversationId))
    this.#store.bindOrigin(key, group)
  }

  /** The group of `upstream` when origins are kept; undefined otherwise. */
  #groupOfUpstream (upstream: string | undefined): string | undefined {
    return upstream === undefined ? undefined : this.#groupOf?.(upstream)
  }

  /** Origins are kept (upstreams in several groups): conversations' creations are worth reading. */
  get keepsOrigins (): boolean {
    return this.#groupOf !== undefined
  }

  /**
   * The group where the lineage of `session`'s request was produced, when origins are kept and
   * it is remembered: the response its `previous_response_id` names, or its conversation — the
   * one that decided the session, or, for a session its header decided, the one its body names.
   */
  originOf (session: Session, fields: SessionFields | undefined): string | undefined | Promise<string | undefined> {
    if (this.#groupOf === undefined || fields === undefined) return undefined
    const { source } = session
    if (fields.previousResponseId !== undefined && (source === 'previous_response' || source === 'header')) return this.#store.originOf(lineageKey.response(fields.previousResponseId))
    if (fields.conversation !== undefined && (source === 'conversation' || source === 'header')) return this.#store.originOf(lineageKey.conversation(fields.conversation))
    return undefined
  }
}

/** The store keys of a request's lineage fields, in the rules' order. */
function lineageKeys (fields: SessionFields): string[] {
  const keys: string[] = []
  if (fields.previousResponseId !== undefined) keys.push(lineageKey.response(fields.previousResponseId))
  if (fields.conversation !== undefined) keys.push(lineageKey.conversation(fields.conversation))
  if (fields.promptCacheKey !== undefined) keys.push(lineageKey.promptCacheKey(fields.promptCacheKey))
  return keys
}

function pickKnown (keys: string[], known: Array<string | undefined>): Session | undefined {
  const sourceOf = (key: string): SessionSource =>
    key.startsWith('resp:') ? 'previous_response' : key.startsWith('conv:') ? 'conversation' : 'prompt_cache_key'
  for (let i = 0; i < keys.length; i++) {
    const id = known[i]
    if (id !== undefined) return { id, source: sourceOf(keys[i]!) }
    // A conversation decides even when new (its id is derived): a prompt_cache_key further down
    // is often shared by many conversations and must not merge them into one session.
    if (keys[i]!.startsWith('conv:')) return undefined
  }
  return undefined
}

function derive (fields: SessionFields): Session | undefined {
  if (fields.conversation !== undefined) return { id: conversationSessionId(fields.conversation), source: 'conversation' }
  if (fields.promptCacheKey !== undefined) return { id: uuidv5(lineageKey.promptCacheKey(fields.promptCacheKey), DERIVED_ID_NAMESPACE), source: 'prompt_cache_key' }
  return undefined
}

/** A conversation's own session: the same id for it on every replica, store or not. */
export function conversationSessionId (conversation: string): string {
  return uuidv5(lineageKey.conversation(conversation), DERIVED_ID_NAMESPACE)
}
