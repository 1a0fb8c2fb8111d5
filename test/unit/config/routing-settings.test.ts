import t from 'tap'
import { loadConfig } from '../../../src/config/load-config.js'
import { refuses, yamlFile } from '../../support/config-checks.js'

// Regression: UPSTREAM_COOLDOWN_MS=120000 is in its range, but with the default longest cooldown
// (60000) every ejection lasted 60 s: the first cooldown was capped silently, and neither key
// meant what it said.
t.test('a first cooldown longer than the longest is refused, naming both keys', async (t) => {
  refuses(t, () => loadConfig({ env: { UPSTREAM_COOLDOWN_MS: '120000' } }), 'UPSTREAM_COOLDOWN_MS',
    /routing\.cooldown_ms \(UPSTREAM_COOLDOWN_MS\) 120000 is longer than routing\.max_cooldown_ms \(UPSTREAM_MAX_COOLDOWN_MS\) 60000 \(its default\)/)
  refuses(t, () => loadConfig({ env: { UPSTREAM_MAX_COOLDOWN_MS: '1000' } }), 'UPSTREAM_MAX_COOLDOWN_MS',
    /routing\.cooldown_ms \(UPSTREAM_COOLDOWN_MS\) 5000 \(its default\) is longer than routing\.max_cooldown_ms \(UPSTREAM_MAX_COOLDOWN_MS\) 1000/)
  const file = yamlFile(t, 'routing:\n  cooldown_ms: 30000\n  max_cooldown_ms: 20000\n')
  refuses(t, () => loadConfig({ file }), 'routing.cooldown_ms', /raise routing\.max_cooldown_ms \(UPSTREAM_MAX_COOLDOWN_MS\) to at least 30000/)
  refuses(t, () => loadConfig({ file, env: { UPSTREAM_MAX_COOLDOWN_MS: '25000' } }), 'routing.cooldown_ms', /25000/)
})

t.test('a first cooldown up to the longest is accepted', async (t) => {
  t.equal(loadConfig({ env: { UPSTREAM_COOLDOWN_MS: '60000' } }).routing.cooldownMs, 60_000, 'equal to the default longest')
  const config = loadConfig({ env: { UPSTREAM_COOLDOWN_MS: '120000', UPSTREAM_MAX_COOLDOWN_MS: '600000' } })
  t.same([config.routing.cooldownMs, config.routing.maxCooldownMs], [120_000, 600_000])
})
