/**
 * The open-loop driver: starts exchanges at `--rate` per second whatever the answers do, at
 * most `--concurrency` at once, each of a kind drawn by weight from the mix.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { random } from './payloads.mjs'
import { startExchange } from './tally.mjs'
import { MIX, runExchange } from './traffic.mjs'

/** A kind drawn from `mix` by weight. */
function pick (rand, mix) {
  const total = Object.values(mix).reduce((a, b) => a + b, 0)
  let r = rand() * total
  for (const [kind, weight] of Object.entries(mix)) {
    r -= weight
    if (r < 0) return kind
  }
  return Object.keys(mix)[0]
}

/**
 * Starts exchanges at `rate` per second (open loop: arrivals do not wait for answers) for
 * `durationMs`, never more than `concurrency` at once (the rest are counted as shed), then
 * waits for those in flight to end. `ctx.rand` decides kinds and specs, so a seed replays
 * the same traffic.
 */
export async function runLoad ({ rate, concurrency, durationMs, mix = MIX, ctx, onArrivalsEnd = () => {} }) {
  const startedAt = performance.now()
  const inFlight = new Set()
  let started = 0
  for (;;) {
    const elapsed = performance.now() - startedAt
    if (elapsed >= durationMs || ctx.stopped) break
    const due = Math.floor((elapsed / 1000) * rate)
    while (started < due) {
      started++
      if (inFlight.size >= concurrency) {
        ctx.tally.shed++
        continue
      }
      const kind = pick(ctx.rand, mix)
      const x = startExchange(ctx.tally, kind)
      const run = runExchange(kind, ctx, x)
        .catch((err) => x.fail('soak-bug', err.stack ?? String(err)))
        .finally(() => { x.finish(); inFlight.delete(run) })
      inFlight.add(run)
    }
    await sleep(5)
  }
  onArrivalsEnd()
  await Promise.all(inFlight)
}

export function createContext ({ gatewayPort, agent, tally, seed, idleTimeoutMs, scale = 1 }) {
  let n = 0
  const tag = seed.toString(36)
  return {
    origin: `http://127.0.0.1:${gatewayPort}`,
    wsOrigin: `ws://127.0.0.1:${gatewayPort}`,
    agent,
    tally,
    idleTimeoutMs,
    scale,
    rand: random(seed),
    /** Set when the run must end early (the gateway died). */
    stopped: false,
    nextId: () => `${tag}-${(++n).toString(36)}`
  }
}

