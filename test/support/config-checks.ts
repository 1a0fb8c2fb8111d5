/** Helpers for the config tests: a YAML file on disk, and "this load is refused for that key". */
import { join } from 'node:path'
import type { Test } from 'tap'
import { ConfigError } from '../../src/config/settings.js'

/** Asserts that `load` throws a ConfigError for `key` whose message names it. */
export function refuses (t: Test, load: () => unknown, key: string, problem?: RegExp): void {
  try {
    load()
  } catch (err) {
    t.type(err, ConfigError, `${key}: a ConfigError`)
    t.equal((err as ConfigError).key, key, `${key}: the error's key`)
    t.match((err as Error).message, key, `${key}: the message names it`)
    if (problem !== undefined) t.match((err as Error).message, problem)
    return
  }
  t.fail(`${key}: expected a ConfigError`)
}

/** Writes `text` as a YAML file in the test's own directory and returns its path. */
export function yamlFile (t: Test, text: string): string {
  return join(t.testdir({ 'gateway.yaml': text }), 'gateway.yaml')
}
