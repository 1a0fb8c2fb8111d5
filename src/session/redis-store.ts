import { ReplyError } from 'ioredis'
import type { RedisTarget } from '../config/redis-settings.js'
import type { Logger } from '../observe/logger.js'
import { judgesNextCall, parseCallRecord, type CallRecord } from './call-record.js'
import { MemorySessionStore } from './memory-store.js'
import { bytesReadFromRedis, createRedisClient, outageReason, type RedisClient } from './redis-connection.js'
import { ReplayQueue, type PendingBinding, type PendingLineage, type PendingOrigin, type PendingUpstream } from './replay-queue.js'
import type { TokenUsage } from './session-usage.js'
import type { SessionStore, StoreHealth } from './session-store.js'
import { toSessionUsage, type SessionUsage, type UsagePage, type UsageTotals } from './session-usage.js'

export interface RedisStoreOptions {
  /** Where Redis is: a URL, Sentinels or Cluster nodes, with TLS and credentials. */
  target: RedisTarget
  /** Longest a request waits for Redis before deciding from local knowledge. */
  timeoutMs: number
  idleTtlMs: number
  keyPrefix: string
  /** Bounds the local copy kept for when Redis is away. */
  localMaxEntries: number
  /** Bounds the local copy's estimated bytes, like the in-memory store's. */
  localMaxBytes: number
  /** Most bindings made while Redis is away that are written to it when it returns (oldest dropped first). */
  replayMaxEntries: number
  /** Call records kept per session (the newest); 100 unless given. */
  recordsPerSession?: number
  logger: Logger
}

/** What a pipeline's `exec` resolves to: each command's error or reply. */
type PipelineReplies = Array<[Error | null, unknown]> | null

/** The error ioredis rejects a command with past `commandTimeout`. */
const COMMAND_TIMED_OUT = 'Command timed out'

/** Bindings written to Redis per round trip while replaying: small, so requests interleave. */
const REPLAY_BATCH = 100

/**
 * Binds KEYS[1] to ARGV[1] for ARGV[2] seconds unless another session owns it, atomically;
 * renews it when ARGV[1] already does. Returns 1 when the key is ARGV[1]'s, 0 when not. One key
 * a script, so it runs unchanged on Redis Cluster.
 */
const BIND_UNLESS_OWNED = `
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0`

/**
 * Writes a session's upstream binding made while Redis was away (KEYS[1] = ARGV[1], for ARGV[2]
 * ms) unless Redis's binding was written or read after it: every write and every read (GETEX)
 * of one sets its TTL to the full idle TTL, so of two the one with more TTL left was used last.
 * PTTL is -2 for no key and -1 for a key without a TTL: both are written over. Returns 1 when
 * written, 0 when Redis's is kept.
 */
const SET_UNLESS_USED_SINCE = `
if redis.call('PTTL', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

/**
 * A lineage binding made while Redis was away: KEYS[1] = ARGV[1] for ARGV[2] ms unless another
 * session owns it (SET NX). Held by ARGV[1] already is ours: a write that timed out may still
 * have landed. Returns 1 when Redis holds ours, 0 when another's.
 */
const REPLAY_LINEAGE = `
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return 1 end
if owner then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

/**
 * A session's first upstream binding: KEYS[1] = ARGV[1] for ARGV[2] ms unless Redis holds one
 * already (SET NX), which it returns instead, so the replica whose choice was kept out can take
 * it. Returns nil when written.
 */
const BIND_FIRST_UPSTREAM = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`

/**
 * Removes member ARGV[1] from the sorted set KEYS[1] if its score is still ARGV[2]: a session
 * whose usage hash was found gone leaves the recent-sessions index, unless a request used it
 * again meanwhile (which wrote its hash anew and its score).
 */
const FORGET_UNLESS_USED = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`

/** A session's upstream binding: `upstream:<session>`, under the key prefix. */
const upstreamKey = (sessionId: string): string => 'upstream:' + sessionId
/** The group that produced a response or created a conversation: `origin:resp:<id>`, `origin:conv:<id>`, under the key prefix. */
const originKey = (key: string): string => 'origin:' + key

/**
 * Bindings shared by every replica through Redis, each key with a TTL. Every binding is also
 * kept locally, so when Redis is slow or down requests go on within `timeoutMs`, decided from
 * what this process knows; the outage is logged once and the client reconnects by itself.
 * Bindings made meanwhile are queued (bounded) and written when Redis returns: a lineage key
 * never over one Redis holds already (a response id learned from an answer excepted: it is its
 * producer's), a session's upstream unless Redis's was used since. Usage
 * counted meanwhile stays in this process.
 *
 * Works alike on one Redis and on a Cluster: no command spans two keys, since keys of one
 * call may live on different nodes.
 */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis'
  readonly #redis: RedisClient
  readonly #local: MemorySessionStore
  readonly #idleTtlMs: number
  readonly #ttlSeconds: number
  readonly #prefix: string
  readonly #logger: Logger
  readonly #maxUsageSessions: number
  readonly #recordsPerSession: number
  /** Bindings made while Redis was away, written when it returns. */
  readonly #replay: ReplayQueue
  #replaying = false
  /** First upstream bindings sent to Redis and not answered yet, by session: only the latest one's answer is taken. */
  readonly #firstBindings = new Map<string, PendingUpstream>()
  #degradedBy: string | undefined = 'connecting'
  /** The outage is Redis refusing writes (an error reply): only a write it accepts ends it. */
  #writesRefused = false
  #closed = false
  readonly #timeoutMs: number
  /** When a read last timed out (`performance.now()`); a request's next read within `timeoutMs` of it answers locally. */
  #timedOutAt = -Infinity
  /** Set while a timed-out command waits for its verdict (#timedOut): one verdict for all that time out together. */
  #timeoutVerdict = false
  /** Pings a Redis that stopped answering on a connection still open: no event would say it is back. */
  #stallWatch: NodeJS.Timeout | undefined

  constructor (options: RedisStoreOptions) {
    this.#local = new MemorySessionStore({ maxBytes: options.localMaxBytes, maxEntries: options.localMaxEntries, idleTtlMs: options.idleTtlMs, recordsPerSession: options.recordsPerSession })
    this.#recordsPerSession = options.recordsPerSession ?? 100
    this.#idleTtlMs = options.idleTtlMs
    this.#ttlSeconds = Math.max(1, Math.ceil(options.idleTtlMs / 1000))
    this.#prefix = options.keyPrefix
    this.#logger = options.logger
    this.#maxUsageSessions = options.localMaxEntries
    this.#replay = new ReplayQueue(options.replayMaxEntries)
    this.#timeoutMs = options.timeoutMs
    this.#redis = createRedisClient(options.target, options.timeoutMs)
    this.#redis.on('ready', () => this.#reachable())
    this.#redis.on('error', (err: Error & { code?: string }) => this.#degraded(outageReason(err)))
    this.#redis.on('end', () => this.#degraded('connection ended'))
  }

  async lookup (keys: readonly string[]): Promise<Array<string | undefined>> {
    const local = keys.map((key) => this.#local.get(key))
    if (keys.length === 0 || this.#redis.status !== 'ready') return local
    try {
      // One GET per key, not MGET: in a Cluster the keys may be on different nodes.
      const shared = await Promise.all(keys.map(async (key) => await this.#redis.get(this.#prefix + key)))
      this.#recovered()
      return keys.map((_, i) => shared[i] ?? local[i])
    } catch (err) {
      this.#readFailed(err as Error)
      return local
    }
  }

  bind (keys: readonly string[], sessionId: string): void {
    this.#local.bind(keys, sessionId)
    if (keys.length === 0) return
    const expiresAt = Date.now() + this.#idleTtlMs
    if (this.#redis.status !== 'ready') {
      for (const key of keys) this.#replay.add({ kind: 'lineage', key, sessionId, expiresAt })
      return
    }
    // One script call per key, not a pipeline: in a Cluster the keys may be on different nodes.
    for (const key of keys) {
      this.#replay.forget(key)
      this.#redis.eval(BIND_UNLESS_OWNED, 1, this.#prefix + key, sessionId, this.#ttlSeconds).then((bound) => {
        this.#recovered(true)
        // Another replica's session owns the key: the local copy must not claim it either.
        if (bound === 0) this.#local.unbind(key, sessionId)
      }, (err: Error) => {
        this.#replay.add({ kind: 'lineage', key, sessionId, expiresAt })
        this.#writeFailed(err)
      })
    }
  }

  /**
   * A response id, to the session that produced it: a plain SET, over a binding another request
   * made by naming the id before it was learned (here or on another replica). Replayed likewise.
   */
  bindProduced (key: string, sessionId: string): void {
    this.#local.bindProduced(key, sessionId)
    const binding: PendingLineage = { kind: 'lineage', key, sessionId, expiresAt: Date.now() + this.#idleTtlMs, produced: true }
    if (this.#redis.status !== 'ready') {
      this.#replay.add(binding)
      return
    }
    this.#replay.forget(key)
    this.#redis.set(this.#prefix + key, sessionId, 'EX', this.#ttlSeconds).then(() => this.#recovered(true), (err: Error) => {
      this.#replay.add(binding)
      this.#writeFailed(err)
    })
  }

  /**
   * `origin:<key>`, a plain SET with the idle TTL, as the key's own binding. One made while
   * Redis is away (or whose write fails) is replayed when it returns, as bindings are: else
   * another replica would send the response to where its session is bound, perhaps another group.
   */
  bindOrigin (key: string, group: string): void {
    this.#local.bindOrigin(key, group)
    const binding: PendingOrigin = { kind: 'origin', key: originKey(key), group, expiresAt: Date.now() + this.#idleTtlMs }
    if (this.#redis.status !== 'ready') {
      this.#replay.add(binding)
      return
    }
    this.#replay.forget(binding.key)
    this.#redis.set(this.#prefix + binding.key, group, 'EX', this.#ttlSeconds).then(() => this.#recovered(true), (err: Error) => {
      this.#replay.add(binding)
      this.#writeFailed(err)
    })
  }

  /** Read with GETEX, so an origin in use lives at least as long as the binding its uses renew. */
  async originOf (key: string): Promise<string | undefined> {
    const local = this.#local.originOf(key)
    if (this.#redis.status !== 'ready' || performance.now() - this.#timedOutAt < this.#timeoutMs) return local
    return await this.#sharedOr(local, this.#redis.getex(this.#prefix + originKey(key), 'EX', this.#ttlSeconds))
  }

  /**
   * `upstream:<id>`, read with GETEX so a session in use keeps its binding for the idle TTL
   * without a write per request (Redis 6.2+). While Redis is away the local copy answers, and
   * after, until its move made meanwhile is replayed: Redis still holds where it was before.
   * Within `timeoutMs` of a read that timed out (this request's own session lookup, usually)
   * the local copy answers at once: a request waits for a hung Redis once, not twice.
   */
  async upstreamOf (sessionId: string): Promise<string | undefined> {
    const local = this.#local.upstreamOf(sessionId)
    if (this.#redis.status !== 'ready' || performance.now() - this.#timedOutAt < this.#timeoutMs) return local
    const pending = this.#replay.size === 0 ? undefined : this.#replay.get(upstreamKey(sessionId))
    if (pending?.kind === 'upstream' && pending.move) return pending.upstream
    return await this.#sharedOr(local, this.#redis.getex(this.#prefix + upstreamKey(sessionId), 'EX', this.#ttlSeconds))
  }

  /** The session's binding as Redis holds it, for the admin page: a plain GET, not a use (its TTL is left alone). */
  async peekUpstream (sessionId: string): Promise<string | undefined> {
    const local = this.#local.upstreamOf(sessionId)
    if (this.#redis.status !== 'ready') return local
    return await this.#sharedOr(local, this.#redis.get(this.#prefix + upstreamKey(sessionId)))
  }

  /** Redis's binding as `reply` brings it, else the local copy's (none there, or Redis failed to answer). */
  async #sharedOr (local: string | undefined, reply: Promise<string | null>): Promise<string | undefined> {
    try {
      const shared = await reply
      this.#recovered()
      return shared ?? local
    } catch (err) {
      this.#readFailed(err as Error)
      return local
    }
  }

  /**
   * A move overwrites: a session moves when its upstream fails. A first binding (`move` false:
   * the request found none, perhaps only because Redis did not answer in time) is written only
   * where Redis holds none, so it never moves a session another replica bound; kept out, the
   * local copy takes the binding Redis holds (#adoptShared). One made while Redis is away (or
   * whose write fails) is queued and replayed when it returns, the last per session: else the
   * binding Redis held from before would send a moved session back, on every replica.
   */
  bindUpstream (sessionId: string, upstream: string, move = true): void {
    this.#local.bindUpstream(sessionId, upstream)
    this.#firstBindings.delete(sessionId) // a later binding decides, not an earlier one's answer
    const key = upstreamKey(sessionId)
    const expiresAt = Date.now() + this.#ttlSeconds * 1000 // Redis's TTL of the binding, to compare with it
    const binding: PendingUpstream = { kind: 'upstream', key, sessionId, upstream, expiresAt, move }
    if (this.#redis.status !== 'ready') {
      this.#replay.add(binding)
      return
    }
    this.#replay.forget(key)
    const failed = (err: Error): void => {
      this.#replay.add(binding)
      this.#writeFailed(err)
    }
    if (move) {
      this.#redis.set(this.#prefix + key, upstream, 'EX', this.#ttlSeconds).then(() => this.#recovered(true), failed)
      return
    }
    this.#firstBindings.set(sessionId, binding)
    this.#redis.eval(BIND_FIRST_UPSTREAM, 1, this.#prefix + key, upstream, this.#ttlSeconds * 1000).then((held) => {
      this.#recovered(true)
      if (this.#firstBindings.get(sessionId) !== binding) return
      this.#firstBindings.delete(sessionId)
      this.#adoptShared(binding, held)
    }, (err: Error) => {
      if (this.#firstBindings.get(sessionId) === binding) this.#firstBindings.delete(sessionId)
      failed(err)
    })
  }

  /**
   * A first binding was kept out: Redis holds another replica's (`held`). The local copy takes
   * it, or this replica would route the session to its own choice whenever it answers locally
   * (Redis away or slow), while every other replica follows Redis's.
   */
  #adoptShared (ours: PendingUpstream, held: unknown): void {
    if (typeof held === 'string' && held !== ours.upstream) this.#local.bindUpstream(ours.sessionId, held)
  }

  /**
   * Totals are a Redis hash per session (`usage:<id>`, with the idle TTL) and a sorted set of
   * session ids by last activity (`usage-recent`), trimmed to `localMaxEntries`. While Redis is
   * away, usage is counted locally only, and stays local: counters are not replayed, since a
   * replay cut short could not tell which increments had landed.
   */
  recordUsage (sessionId: string, tokens: TokenUsage, at: number): void {
    this.#local.recordUsage(sessionId, tokens, at)
    if (this.#redis.status !== 'ready') return
    const key = this.#prefix + 'usage:' + sessionId
    const recent = this.#prefix + 'usage-recent'
    const answered = (replies: PipelineReplies): void => this.#pipelineAnswered(replies)
    const failed = (err: Error): void => this.#writeFailed(err)
    // Two pipelines, one per key: in a Cluster a pipeline must stay on one node.
    this.#redis.pipeline()
      .hincrby(key, 'requests', 1)
      .hincrby(key, 'input', tokens.input)
      .hincrby(key, 'cached', tokens.cached)
      .hincrby(key, 'output', tokens.output)
      .hincrby(key, 'reasoning', tokens.reasoning)
      .hsetnx(key, 'firstSeen', at)
      .hset(key, 'lastSeen', at)
      .expire(key, this.#ttlSeconds)
      .exec()
      .then(answered, failed)
    this.#redis.pipeline()
      .zadd(recent, at, sessionId)
      .zremrangebyrank(recent, 0, -(this.#maxUsageSessions + 1))
      .exec()
      .then(answered, failed)
  }

  /**
   * Records are a capped list per session, newest first (`records:<id>`: LPUSH, LTRIM and
   * EXPIRE with the idle TTL, one key, so Cluster-safe). Its newest answered record is the
   * previous call the next one is judged against, so every replica judges alike. While Redis is
   * away records are kept locally only, like usage.
   */
  async recordCall (sessionId: string, build: (previous: CallRecord | undefined) => CallRecord): Promise<CallRecord> {
    if (this.#redis.status !== 'ready') return await this.#local.recordCall(sessionId, build)
    const key = this.#prefix + 'records:' + sessionId
    let previous: CallRecord | undefined
    try {
      previous = await this.#judgedAgainst(key)
      this.#recovered()
    } catch (err) {
      this.#degraded((err as Error).message)
      return await this.#local.recordCall(sessionId, build)
    }
    const record = await this.#local.recordCall(sessionId, () => build(previous))
    this.#redis.pipeline()
      .lpush(key, JSON.stringify(record))
      .ltrim(key, 0, this.#recordsPerSession - 1)
      .expire(key, this.#ttlSeconds)
      .exec()
      .then((replies) => this.#pipelineAnswered(replies), (err: Error) => this.#writeFailed(err))
    return record
  }

  /** The list's head, or when the head was refused (rare: a 429 an SDK retries) the newest answered record below it. */
  async #judgedAgainst (key: string): Promise<CallRecord | undefined> {
    const head = parseCallRecord(await this.#redis.lindex(key, 0))
    if (head === undefined || judgesNextCall(head)) return head
    for (const item of await this.#redis.lrange(key, 1, -1)) {
      const record = parseCallRecord(item)
      if (record !== undefined && judgesNextCall(record)) return record
    }
    return undefined
  }

  async calls (sessionId: string): Promise<CallRecord[] | undefined> {
    if (this.#redis.status !== 'ready') return await this.#local.calls(sessionId)
    try {
      const items = await this.#redis.lrange(this.#prefix + 'records:' + sessionId, 0, -1)
      this.#recovered()
      if (items.length > 0) return items.map((item) => parseCallRecord(item)).filter((r): r is CallRecord => r !== undefined)
      // A session with usage but no model calls yet (only other routes) is known, with none.
      return (await this.#redis.exists(this.#prefix + 'usage:' + sessionId)) === 1 ? [] : undefined
    } catch (err) {
      this.#degraded((err as Error).message)
      return await this.#local.calls(sessionId)
    }
  }

  async usage (sessionId: string): Promise<SessionUsage | undefined> {
    if (this.#redis.status !== 'ready') return await this.#local.usage(sessionId)
    try {
      const totals = parseTotals(await this.#redis.hgetall(this.#prefix + 'usage:' + sessionId))
      this.#recovered()
      return totals === undefined ? undefined : toSessionUsage(sessionId, totals)
    } catch (err) {
      this.#degraded((err as Error).message)
      return await this.#local.usage(sessionId)
    }
  }

  /**
   * The page and the total are read from `usage-recent` after dropping the sessions whose
   * usage hash has expired: a member's score is its last use, and the hash's TTL was set
   * (with the same idle TTL) at that use, so a score older than the TTL is a hash gone. One
   * MULTI on one key (Cluster-safe), so the total counts what the page is a slice of.
   *
   * A hash can also go before its TTL runs out (evicted under `maxmemory`, lost in a failover,
   * deleted by hand): its member stays in the index, counted, until a page reads it (then it
   * leaves the index) or its last use ages past the TTL. Checking every member for its hash on
   * each read would cost one command per session, so the total is `approximate` unless the
   * page read every member (the first page, holding them all).
   */
  async recentUsage (limit: number, offset: number): Promise<UsagePage> {
    if (this.#redis.status !== 'ready') return await this.#local.recentUsage(limit, offset)
    try {
      const recent = this.#prefix + 'usage-recent'
      const replies = await this.#redis.multi()
        .zremrangebyscore(recent, '-inf', Date.now() - this.#ttlSeconds * 1000)
        .zrevrange(recent, offset, offset + limit - 1, 'WITHSCORES')
        .zcard(recent)
        .exec()
      const [members, total] = [replyOf<string[]>(replies, 1), replyOf<number>(replies, 2)]
      const ids = members.filter((_, i) => i % 2 === 0)
      // One HGETALL per session: in a Cluster their hashes live on different nodes.
      const rows = await Promise.all(ids.map(async (id) => await this.#redis.hgetall(this.#prefix + 'usage:' + id)))
      this.#recovered()
      const sessions: SessionUsage[] = []
      ids.forEach((id, i) => {
        const totals = parseTotals(rows[i])
        if (totals !== undefined) sessions.push(toSessionUsage(id, totals))
        else this.#forgetGoneUsage(recent, id, members[2 * i + 1]!)
      })
      // A hash found gone (expired between the MULTI and its HGETALL, or evicted) is neither listed nor counted.
      return { sessions, total: total - (ids.length - sessions.length), approximate: offset > 0 || ids.length < total }
    } catch (err) {
      this.#degraded((err as Error).message)
      return await this.#local.recentUsage(limit, offset)
    }
  }

  /** A listed session's usage hash is gone: its member leaves the index, unless it was used again since it was read. */
  #forgetGoneUsage (recent: string, sessionId: string, score: string): void {
    this.#redis.eval(FORGET_UNLESS_USED, 1, recent, sessionId, score).then(() => this.#recovered(true), (err: Error) => this.#writeFailed(err))
  }

  health (): StoreHealth {
    return this.#degradedBy === undefined
      ? { kind: 'redis', state: 'ok' }
      : { kind: 'redis', state: 'degraded', detail: `redis unavailable (${this.#degradedBy}); sessions decided locally` }
  }

  size (): number {
    return this.#local.size()
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#stallWatch)
    this.#redis.disconnect()
    await this.#local.close()
  }

  #degraded (reason: string): void {
    // Our own disconnect ends the connection too ('end'): that is a shutdown, not an outage.
    if (this.#closed) return
    if (this.#degradedBy !== undefined && this.#degradedBy !== 'connecting') return
    if (reason === COMMAND_TIMED_OUT && this.#degradedBy === undefined) this.#timedOut()
    else this.#outage(reason)
  }

  /**
   * A command timed out: Redis did not answer within `timeoutMs`, or this process did not read
   * its answer in time. Timers run before the event loop reads its sockets, so after a stall of
   * the process itself (starved of CPU, a long GC) an answer that came in time is still unread
   * when its command's timer fires. The verdict waits for that read (an immediate runs after
   * it): an outage only if nothing came from Redis meanwhile. Else Redis is answering, and a
   * replay the timeout cut goes on: no outage starts, so no recovery would restart it, and its
   * bindings waited for the next command that happened to be answered (forever, with no traffic).
   */
  #timedOut (): void {
    if (this.#timeoutVerdict) return
    this.#timeoutVerdict = true
    const read = bytesReadFromRedis(this.#redis)
    setImmediate(() => {
      this.#timeoutVerdict = false
      if (this.#closed || this.#degradedBy !== undefined) return
      if (bytesReadFromRedis(this.#redis) === read) this.#outage(COMMAND_TIMED_OUT)
      else if (this.#replay.size > 0) void this.#replayPending()
    })
  }

  #outage (reason: string): void {
    const first = this.#degradedBy === undefined
    this.#degradedBy = reason
    this.#watchForAnswers()
    // Logged once per outage, not once per failed command or reconnect attempt.
    if (first) this.#logger.warn({ reason }, 'session store: redis unavailable, deciding sessions locally until it returns')
    else this.#logger.warn({ reason }, 'session store: redis not reachable at start, deciding sessions locally until it is')
  }

  /**
   * A pipeline of writes resolves whatever became of its commands: each reply holds its own
   * error. Redis kept them unless one timed out, lost its connection, or was refused.
   */
  #pipelineAnswered (replies: PipelineReplies): void {
    const failure = replies?.find(([err]) => err !== null)?.[0]
    if (failure === undefined || failure === null) this.#recovered(true)
    else this.#writeFailed(failure)
  }

  /**
   * A write failed. One Redis refused with an error reply (OOM under `maxmemory`, READONLY,
   * NOPERM) keeps nothing of ours though it answers: an outage that answers to reads do not
   * end, only a write it accepts. Else each request's read would end it and its write start it
   * again, both logged.
   */
  #writeFailed (err: Error): void {
    if (err instanceof ReplyError && !this.#closed) this.#writesRefused = true
    this.#degraded(err.message)
  }

  /** A read failed: a timeout also lets a request's next read within timeoutMs answer locally (see upstreamOf). */
  #readFailed (err: Error): void {
    if (err.message === COMMAND_TIMED_OUT) this.#timedOutAt = performance.now()
    this.#degraded(err.message)
  }

  /**
   * Redis answered (`wrote`: accepted a write): an outage, if one was on, is over. Every
   * command's answer says so, not only the reads': a stall drops no connection, so no `ready`
   * event ends it. Bindings queued in a reconnect that no error announced (a connection closed
   * cleanly: an idle timeout, CLIENT KILL) are written too. Refused writes (#writeFailed) end
   * only with a write accepted.
   */
  #recovered (wrote = false): void {
    this.#timedOutAt = -Infinity // answering again: reads need not skip it
    if (this.#writesRefused && !wrote) return
    this.#writesRefused = false
    if (this.#degradedBy !== undefined) {
      const wasConnecting = this.#degradedBy === 'connecting'
      this.#degradedBy = undefined
      clearInterval(this.#stallWatch)
      this.#stallWatch = undefined
      if (!wasConnecting) this.#logger.info('session store: redis is back, sessions shared again')
    }
    if (this.#replay.size > 0) void this.#replayPending()
  }

  /**
   * A new connection, or a PING answered during an outage. While Redis refuses writes only a
   * write can tell it accepts them again: the queued bindings are that write.
   */
  #reachable (): void {
    this.#recovered()
    if (this.#writesRefused && this.#replay.size > 0) void this.#replayPending()
  }

  /**
   * While an outage lasts, a PING now and then on a connection that is still open: a Redis that
   * stalled (a slow command, a fork, a paused VM) comes back with no event, so without traffic
   * `/readyz` would say degraded and queued bindings wait until a request happens to ask.
   * A connection that dropped is the client's to reopen; its `ready` ends the outage.
   */
  #watchForAnswers (): void {
    if (this.#stallWatch !== undefined) return
    this.#stallWatch = setInterval(() => {
      if (this.#redis.status === 'ready') this.#redis.ping().then(() => this.#reachable(), () => {})
    }, Math.max(this.#timeoutMs, 1_000)).unref()
  }

  /**
   * Writes the bindings queued while Redis was away, a batch per round trip so requests go on
   * meanwhile. A lineage key with SET NX (REPLAY_LINEAGE): one another replica bound while this
   * one could not reach Redis keeps that binding; its own, landed after all, is no other's. A
   * session's upstream unless another replica wrote or read it after this one moved it
   * (SET_UNLESS_USED_SINCE); a first one only where Redis holds none
   * (BIND_FIRST_UPSTREAM, whose kept-out answer the local copy takes). Stops at the first
   * failure; what is left waits for the next recovery.
   */
  async #replayPending (): Promise<void> {
    if (this.#replaying || this.#replay.size === 0) return
    this.#replaying = true
    const counts = { written: 0, kept: 0, expired: 0 }
    try {
      for (let batch = this.#replay.oldest(REPLAY_BATCH); batch.length > 0 && !this.#closed; batch = this.#replay.oldest(REPLAY_BATCH)) {
        const results = await Promise.all(batch.map(async (entry) => await this.#replayOne(entry)))
        for (const result of results) counts[result]++
        this.#replay.done(batch)
        if (this.#writesRefused && results.some((result) => result !== 'expired')) this.#recovered(true)
      }
      this.#logger.info({ ...counts, dropped: this.#replay.takeDropped() }, 'session store: bindings made while redis was away are written to it')
    } catch (err) {
      this.#writeFailed(err as Error)
    } finally {
      this.#replaying = false
    }
  }

  async #replayOne (entry: PendingBinding): Promise<'written' | 'kept' | 'expired'> {
    const ttlMs = entry.expiresAt - Date.now()
    if (ttlMs <= 0) return 'expired'
    if (entry.kind === 'upstream' && entry.move) {
      const written = await this.#redis.eval(SET_UNLESS_USED_SINCE, 1, this.#prefix + entry.key, entry.upstream, ttlMs)
      return written === 1 ? 'written' : 'kept'
    }
    if (entry.kind === 'upstream') {
      const held = await this.#redis.eval(BIND_FIRST_UPSTREAM, 1, this.#prefix + entry.key, entry.upstream, ttlMs)
      if (held === null) return 'written'
      // Unless the session was bound again meanwhile (that binding decides, whenever it is written).
      if (this.#replay.get(entry.key) === entry) this.#adoptShared(entry, held)
      return 'kept'
    }
    // An origin, or a response id to the session that produced it: written over what is there.
    if (entry.kind === 'origin' || entry.produced === true) {
      await this.#redis.set(this.#prefix + entry.key, entry.kind === 'origin' ? entry.group : entry.sessionId, 'PX', ttlMs)
      return 'written'
    }
    const ours = await this.#redis.eval(REPLAY_LINEAGE, 1, this.#prefix + entry.key, entry.sessionId, ttlMs)
    if (ours === 1) return 'written'
    // Another replica's session owns the key: the local copy must not claim it either (as in bind).
    if (this.#replay.get(entry.key) === entry) this.#local.unbind(entry.key, entry.sessionId)
    return 'kept'
  }
}

/** The reply of a MULTI's `index`th command; its error, or a MULTI aborted, is thrown. */
function replyOf<T> (replies: Array<[Error | null, unknown]> | null, index: number): T {
  const [err, reply] = replies?.[index] ?? [new Error('redis MULTI aborted'), undefined]
  if (err !== null) throw err
  return reply as T
}

function parseTotals (hash: Record<string, string> | undefined): UsageTotals | undefined {
  if (hash === undefined || hash.requests === undefined) return undefined
  const n = (value: string | undefined): number => Number(value ?? 0) || 0
  return {
    requests: n(hash.requests),
    input: n(hash.input),
    cached: n(hash.cached),
    output: n(hash.output),
    reasoning: n(hash.reasoning),
    firstSeen: n(hash.firstSeen),
    lastSeen: n(hash.lastSeen)
  }
}
