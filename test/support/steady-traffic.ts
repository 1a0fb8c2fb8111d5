/**
 * Clients that keep sending requests through the gateway, for "kill an upstream under steady
 * traffic": several loops, each going round its own sessions one request after another
 * (alternating a JSON call and a short SSE stream), and one loop that starts a new session with
 * every request. Each request is recorded with the upstream that answered (`x-upstream`) and how
 * it ended, as the client saw it. Waiting is on what the records show, never on a clock.
 */
import http from 'node:http'
import { Agent, request } from 'undici'

/**
 * - `complete`: a 200 with the whole answer (a JSON response id, or an SSE stream through
 *   `response.completed`);
 * - `torn`: the head arrived, then the connection broke (a stream cut mid-way);
 * - `failed`: no head, or a status other than 200 (what failover exists to prevent);
 * - `ended-short`: a 200 that ended cleanly without its whole answer (must never happen).
 */
export type Outcome = 'complete' | 'torn' | 'failed' | 'ended-short'

export interface TrafficRecord {
  /** Order in which requests started, across all loops. */
  seq: number
  /** Index in the loops given; -1 for the new-session loop. */
  loop: number
  session: string
  kind: 'json' | 'stream'
  upstream: string | undefined
  status: number
  outcome: Outcome
  error?: string
}

export interface SteadyTraffic {
  records: TrafficRecord[]
  /** The `seq` the next request will get: a mark to compare records against. */
  mark: () => number
  /** Resolves once every loop has gone round all its sessions `rounds` more times, counted from now. */
  rounds: (rounds: number) => Promise<void>
  /** Resolves with the first record (finished from now on) that matches. */
  until: (predicate: (record: TrafficRecord) => boolean) => Promise<TrafficRecord>
  /** Stops starting requests; resolves once the ones in flight have finished. */
  stop: () => Promise<void>
}

export function startSteadyTraffic (baseURL: string, loops: string[][], newSessionPrefix: string): SteadyTraffic {
  const agent = new Agent({ pipelining: 1 })
  const records: TrafficRecord[] = []
  const finishedPerLoop = loops.map(() => 0)
  const watchers = new Set<(record: TrafficRecord) => void>()
  let seq = 0
  let stopping = false
  let stopped: Promise<void> | undefined
  const send = async (loop: number, session: string, kind: TrafficRecord['kind']): Promise<void> => {
    const record = await sendOne(agent, baseURL, seq++, loop, session, kind)
    records.push(record)
    if (loop >= 0) finishedPerLoop[loop]!++
    for (const watcher of [...watchers]) watcher(record)
  }
  const running = [
    ...loops.map(async (sessions, loop) => {
      for (let i = 0; !stopping; i++) await send(loop, sessions[i % sessions.length]!, i % 2 === 0 ? 'json' : 'stream')
    }),
    (async () => {
      for (let i = 0; !stopping; i++) await send(-1, `${newSessionPrefix}-${i}`, 'json')
    })()
  ]
  const watch = async (match: (record: TrafficRecord) => boolean): Promise<TrafficRecord> => await new Promise((resolve) => {
    const watcher = (record: TrafficRecord): void => {
      if (!match(record)) return
      watchers.delete(watcher)
      resolve(record)
    }
    watchers.add(watcher)
  })
  return {
    records,
    mark: () => seq,
    rounds: async (rounds) => {
      const targets = loops.map((sessions, loop) => finishedPerLoop[loop]! + rounds * sessions.length)
      const reached = (): boolean => targets.every((target, loop) => finishedPerLoop[loop]! >= target)
      if (!reached()) await watch(reached)
    },
    until: watch,
    stop: async () => {
      stopping = true
      stopped ??= Promise.all(running).then(async () => await agent.close())
      await stopped
    }
  }
}

async function sendOne (agent: Agent, baseURL: string, seq: number, loop: number, session: string, kind: TrafficRecord['kind']): Promise<TrafficRecord> {
  const record: TrafficRecord = { seq, loop, session, kind, upstream: undefined, status: 0, outcome: 'failed' }
  let text: string
  try {
    const res = await request(`${baseURL}/responses`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'session-id': session },
      body: JSON.stringify({ model: 'gpt-test', input: 'hi', stream: kind === 'stream' })
    })
    record.status = res.statusCode
    record.upstream = res.headers['x-upstream'] as string | undefined
    try {
      text = await res.body.text()
    } catch (err) {
      record.outcome = 'torn'
      record.error = (err as Error).message
      return record
    }
  } catch (err) {
    record.error = (err as Error).message
    return record
  }
  if (record.status !== 200) return record
  const whole = kind === 'json' ? text.startsWith('{"id":"resp_') : text.includes('event: response.completed')
  record.outcome = whole ? 'complete' : 'ended-short'
  return record
}

export interface HeldStream {
  upstream: string
  /** Settles when the stream ends: `torn` when its connection broke, `complete` when it ended cleanly. */
  ended: Promise<'complete' | 'torn'>
  close: () => void
}

/** An SSE stream the upstream starts and never finishes (`"hold":true`); resolves once its head arrived. */
export async function holdStream (gateway: { baseURL: string }, session: string): Promise<HeldStream> {
  return await new Promise((resolve, reject) => {
    const req = http.request(`${gateway.baseURL}/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'session-id': session } }, (res) => {
      const ended = new Promise<'complete' | 'torn'>((done) => {
        res.on('end', () => done('complete'))
        res.on('error', () => done('torn'))
        res.on('aborted', () => done('torn'))
      })
      res.resume()
      resolve({ upstream: String(res.headers['x-upstream']), ended, close: () => req.destroy() })
    })
    req.on('error', reject)
    req.end(JSON.stringify({ model: 'gpt-test', stream: true, hold: true }))
  })
}
