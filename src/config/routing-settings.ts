/**
 * The check that spans the routing settings, each valid alone: a first cooldown longer than the
 * longest could only be cut to the longest, which is not what either key says.
 */
import type { GatewayConfig, NamedSetting } from './load-config.js'
import { ConfigWarning, refuseLonger, type SetBy } from './settings.js'

const COOLDOWN = ['routing.cooldown_ms', 'UPSTREAM_COOLDOWN_MS'] as const
const MAX_COOLDOWN = ['routing.max_cooldown_ms', 'UPSTREAM_MAX_COOLDOWN_MS'] as const

/** Blamed on the key that was set, the first cooldown's first. */
export function checkRoutingSettings ({ routing }: GatewayConfig, setBy: SetBy): void {
  const { cooldownMs, maxCooldownMs } = routing
  if (cooldownMs > maxCooldownMs) refuseLonger(COOLDOWN, cooldownMs, MAX_COOLDOWN, maxCooldownMs, setBy, 'the longest cooldown')
}

/**
 * `routing.*` keys set to other than their defaults (`settings`: all of them) while there is one
 * upstream: they govern retries, replays and ejections between upstreams, and one upstream is
 * never retried elsewhere or judged. A key written at its default (config.example.yaml writes
 * them all) changes nothing either way. Warnings, not errors, like the upstream list's
 * (upstream-list.ts): such configs always started.
 */
export function loneUpstreamRoutingWarnings ({ upstreams, routing }: GatewayConfig, settings: readonly NamedSetting[], setBy: SetBy): ConfigWarning[] {
  if (upstreams.length !== 1) return []
  return settings.flatMap(({ path, key, default: atDefault }) => {
    const setAt = setBy.get(path)
    if (setAt === undefined || routing[key as keyof typeof routing] === atDefault) return []
    return [new ConfigWarning(setAt, `has no effect with a single upstream: ${path} governs retries, body replays and ejections between upstreams, and one upstream is never retried elsewhere or ejected; list a second upstream, or remove it`)]
  })
}
