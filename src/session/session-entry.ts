import type { CallRecord } from './call-record.js'
import type { RecentRecords } from './recent-records.js'
import type { UsageTotals } from './session-usage.js'

/**
 * Everything the in-memory store holds for one session, in one object: its lineage keys, its
 * usage totals and the bytes they are estimated to take, so the session is counted, kept and
 * evicted as a whole. Bindings point at the entry, so the session id is stored once.
 */
export interface SessionEntry {
  readonly id: string
  /** Its lineage keys, least recently used first. */
  readonly keys: Set<string>
  usage: UsageTotals | undefined
  /** Its last model calls; undefined before the first. */
  records: RecentRecords<CallRecord> | undefined
  /**
   * The upstream serving it, with several upstreams. The name is the config's own string,
   * shared by every entry, so it adds no bytes of its own.
   */
  upstream: string | undefined
  /** Estimated heap bytes of all of the above; per-session records add theirs here too. */
  bytes: number
  expiresAt: number
}

/**
 * Conservative estimates of the heap one session costs, measured with `npm run bench:store`
 * (bench/store-memory.mjs) on Node 20 x64 and rounded up. Strings count 2 bytes a character
 * (V8 stores ASCII in 1, but UTF-16 in 2); the fixed parts cover object headers, Map and Set
 * slots at their worst load factor, and the string headers.
 */
export const SESSION_BYTES = {
  /** The entry object, its empty Set, its slot in the sessions Map, the id's string header. */
  session: 400,
  /** A key's slot in the key Map and in its session's Set, and its string header. */
  perKey: 200,
  /**
   * A response key's producing group: its slot in the origins Map, key and name being
   * strings held anyway (not measured by the bench: an OrderedHashMap entry's 3 words at
   * half load, rounded up).
   */
  perOrigin: 60,
  /** A usage totals object, with its two timestamps as heap numbers. */
  usage: 150,
  /**
   * A call record: an object of 16 fields, its slot in the array; its strings add theirs. 320
   * measured with 13; the 14th, `error` (undefined but for a call refused in its stream), is one
   * more 8-byte slot, and so are the 15th and 16th, `inputBytes` and `inputCheckpoints`; the
   * checkpoints' array adds its own (callRecordBytes).
   */
  record: 344,
  /** An array of doubles: its object and its backing store's header; 8 bytes an element more. */
  doubles: 48
}

/** The estimated bytes of a new, empty session entry for `sessionId`. */
export function sessionEntryBytes (sessionId: string): number {
  return SESSION_BYTES.session + 2 * sessionId.length
}

/** The estimated bytes of one call record. */
export function callRecordBytes (r: CallRecord): number {
  const checkpoints = r.inputCheckpoints === undefined ? 0 : SESSION_BYTES.doubles + 8 * r.inputCheckpoints.length
  return SESSION_BYTES.record + checkpoints + 2 * ((r.model?.length ?? 0) + r.upstream.length + (r.fingerprint?.length ?? 0) + (r.error?.length ?? 0))
}
