/**
 * Starting the four proxies in front of one upstream, and the order they take turns in:
 * rounds alternate, so no proxy always runs first (on a warm or a cold machine).
 */
import { proxiesToRun } from '../lib/contenders.mjs'

/**
 * Starts the run's proxies (or `only` these) in front of `upstream`; returns
 * `[{ proxy, server }]`.
 */
export async function startProxies (run, upstream, only = proxiesToRun(run)) {
  const running = []
  try {
    for (const proxy of only) {
      running.push({ proxy, server: await proxy.start(run, upstream) })
    }
  } catch (err) {
    await stopAll(running)
    throw err
  }
  return running
}

export async function stopAll (running) {
  await Promise.all(running.map(({ server }) => server.stop()))
}

/** The proxies in round `round`'s order: the list rotated by one place per round. */
export function turnOrder (list, round) {
  const shift = round % list.length
  return [...list.slice(shift), ...list.slice(0, shift)]
}

/** Runs `check` for each proxy; a proxy that fails it is reported and left out of the rounds. */
export async function keepCorrect (run, scenario, running, check) {
  const correct = []
  for (const entry of running) {
    try {
      await check(entry.server)
      correct.push(entry)
    } catch (err) {
      run.fail(`${scenario}: ${entry.proxy.label} answered wrongly: ${err.message}`)
    }
  }
  return correct
}
