/**
 * The check that spans the routing settings, each valid alone: a first cooldown longer than the
 * longest could only be cut to the longest, which is not what either key says.
 */
import type { GatewayConfig } from './load-config.js'
import { refuseLonger, type SetBy } from './settings.js'

const COOLDOWN = ['routing.cooldown_ms', 'UPSTREAM_COOLDOWN_MS'] as const
const MAX_COOLDOWN = ['routing.max_cooldown_ms', 'UPSTREAM_MAX_COOLDOWN_MS'] as const

/** Blamed on the key that was set, the first cooldown's first. */
export function checkRoutingSettings ({ routing }: GatewayConfig, setBy: SetBy): void {
  const { cooldownMs, maxCooldownMs } = routing
  if (cooldownMs > maxCooldownMs) refuseLonger(COOLDOWN, cooldownMs, MAX_COOLDOWN, maxCooldownMs, setBy, 'the longest cooldown')
}
