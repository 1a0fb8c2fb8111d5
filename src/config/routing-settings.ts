/**
 * The check that spans the routing settings, each valid alone: a first cooldown longer than the
 * longest could only be cut to the longest, which is not what either key says.
 */
import type { GatewayConfig } from './load-config.js'
import { ConfigError, namedValue, type SetBy } from './settings.js'

const COOLDOWN = ['routing.cooldown_ms', 'UPSTREAM_COOLDOWN_MS'] as const
const MAX_COOLDOWN = ['routing.max_cooldown_ms', 'UPSTREAM_MAX_COOLDOWN_MS'] as const

/** Blamed on the key that was set, the first cooldown's first. */
export function checkRoutingSettings ({ routing }: GatewayConfig, setBy: SetBy): void {
  const { cooldownMs, maxCooldownMs } = routing
  if (cooldownMs <= maxCooldownMs) return
  const key = setBy.get(COOLDOWN[0]) ?? setBy.get(MAX_COOLDOWN[0]) ?? COOLDOWN[0]
  throw new ConfigError(key, `${namedValue(COOLDOWN, cooldownMs, setBy)} is longer than ${namedValue(MAX_COOLDOWN, maxCooldownMs, setBy)}, ` +
    `the longest cooldown: lower ${COOLDOWN[0]} (${COOLDOWN[1]}), or raise ${MAX_COOLDOWN[0]} (${MAX_COOLDOWN[1]}) to at least ${cooldownMs}`)
}
