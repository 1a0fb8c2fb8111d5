/**
 * The configured upstreams, each with what a request to it needs (where it is, its headers,
 * its health), and the plan that orders them for one request's session.
 */
import { isManaged, type GatewayConfig } from '../config/load-config.js'
import type { UpstreamSpec } from '../config/upstream-list.js'
import { errors, type GatewayError } from '../errors.js'
import { rendezvousOrder } from './rendezvous.js'
import { upstreamHeaderRules, type UpstreamHeaders } from './request-headers.js'
import { UpstreamHealth } from './upstream-health.js'
import { upstreamTarget, type UpstreamTarget } from './upstream-path.js'

export interface Upstream {
  readonly name: string
  readonly group: string
  readonly weight: number
  readonly spec: UpstreamSpec
  readonly target: UpstreamTarget
  readonly headers: UpstreamHeaders
  readonly health: UpstreamHealth
  /**
   * Managed mode: the gateway sends this upstream its own key (or, without one, no client
   * credentials at all), so a 401 or 403 from it is most often that key refused (judgeAnswer).
   */
  readonly managedCredentials: boolean
}

/**
 * How an upstream's answer with `status` is taken before a byte of it reaches the client:
 * `served`, relayed; `failed`, a 5xx or a 429, the upstream's failure, tried on the next
 * upstream and counted toward its ejection; `key_refused`, in managed mode a 401 or 403, tried
 * on the next upstream but not counted. A key the gateway sends that is refused (revoked, a
 * project without access to the model) no client can fix, and another upstream's may work;
 * but a client can draw such an answer too (an `OpenAI-Organization` header of another
 * organization, a path or model the key may not use), and a few of those must not eject every
 * upstream. In pass-through mode the key is the client's: its 401 is served as it is.
 */
export type AnswerVerdict = 'served' | 'failed' | 'key_refused'

export function judgeAnswer (upstream: Upstream, status: number): AnswerVerdict {
  if (status >= 500 || status === 429) return 'failed'
  return upstream.managedCredentials && (status === 401 || status === 403) ? 'key_refused' : 'served'
}

/** Why a session's next request goes to another upstream than the one it was bound to. */
export type RebindReason = 'failover' | 'unhealthy' | 'removed' | 'lineage'

/** The upstreams one request may be tried on, in order, or why it may be tried on none. */
export type RoutePlan =
  | { order: Upstream[], rebindReason: RebindReason | undefined, refusal?: undefined }
  | { refusal: GatewayError, order?: undefined, rebindReason?: undefined }

export class UpstreamSet {
  readonly all: readonly Upstream[]
  readonly #byName: ReadonlyMap<string, Upstream>
  readonly #maxAttempts: number

  constructor (config: GatewayConfig) {
    const { routing } = config
    const managed = isManaged(config)
    this.all = config.upstreams.map((spec) => ({
      name: spec.name,
      group: spec.group,
      weight: spec.weight,
      spec,
      target: upstreamTarget(spec.url),
      headers: headersFor(config, spec, managed),
      health: new UpstreamHealth(routing),
      managedCredentials: managed
    }))
    this.#byName = new Map(this.all.map((upstream) => [upstream.name, upstream]))
    this.#maxAttempts = routing.maxAttempts
  }

  /** One upstream: no hashing, no health gating, no retries, as before routing existed. */
  get single (): Upstream | undefined {
    return this.all.length === 1 ? this.all[0] : undefined
  }

  /** Upstreams in more than one group: a response exists only in the group that produced it. */
  get spansGroups (): boolean {
    return new Set(this.all.map((upstream) => upstream.group)).size > 1
  }

  /** Whether some upstream is in `group`. */
  hasGroup (group: string): boolean {
    return this.all.some((upstream) => upstream.group === group)
  }

  get (name: string): Upstream | undefined {
    return this.#byName.get(name)
  }

  /**
   * The order in which a request of `sessionId` is tried. Its bound upstream (`boundName`)
   * first while it exists and is healthy, then the healthy rest of its group by rendezvous
   * order, then (without lineage) other groups'. A request whose lineage (previous response,
   * conversation) lives in a group with no healthy upstream is refused rather than sent where
   * that response does not exist. Without lineage, when every upstream is ejected, they are
   * tried anyway: an answer from a recovering upstream beats a certain 503.
   *
   * `originGroup`: the group of the upstream that produced the response (or created the
   * conversation) the request continues, when known (kept with upstreams in several groups).
   * When it is not the session's binding's (the session failed over after producing it), that
   * group is home instead: the response exists only there, and the session moves back with it.
   */
  plan (sessionId: string, boundName: string | undefined, lineage: boolean, originGroup?: string): RoutePlan {
    const ranked = rendezvousOrder(sessionId, this.all)
    const bound = boundName === undefined ? undefined : this.#byName.get(boundName)
    const followsOrigin = originGroup !== undefined && originGroup !== bound?.group && this.hasGroup(originGroup)
    const leader = followsOrigin ? undefined : bound
    const healthy = ranked.filter((upstream) => upstream.health.isHealthy())
    // Without a binding, lineage is assumed to live where the session would first have gone.
    const homeGroup = followsOrigin ? originGroup : (leader ?? (lineage ? ranked[0]! : healthy[0] ?? ranked[0]!)).group
    const inGroup = healthy.filter((upstream) => upstream.group === homeGroup)
    let order = lineage ? inGroup : [...inGroup, ...healthy.filter((upstream) => upstream.group !== homeGroup)]
    if (order.length === 0) {
      if (lineage) return { refusal: errors.upstreamUnavailable(homeGroup) }
      order = leader === undefined ? ranked : [leader, ...ranked.filter((upstream) => upstream !== leader)]
    }
    if (leader !== undefined && order[0] !== leader && order.includes(leader)) order = [leader, ...order.filter((upstream) => upstream !== leader)]
    return { order: order.slice(0, this.#maxAttempts), rebindReason: rebindReason(boundName, bound, order[0]!, followsOrigin) }
  }
}

/** Why a session bound to `boundName` moves when `first` is tried first; undefined when it does not. */
function rebindReason (boundName: string | undefined, bound: Upstream | undefined, first: Upstream, followsOrigin: boolean): RebindReason | undefined {
  if (boundName === undefined || first.name === boundName) return undefined
  return bound === undefined ? 'removed' : followsOrigin ? 'lineage' : 'unhealthy'
}

/** Headers for one upstream: its own key (else the gateway-wide one), the shared extras, then its own. */
function headersFor (config: GatewayConfig, spec: UpstreamSpec, managed: boolean): UpstreamHeaders {
  const apiKey = spec.apiKey !== '' ? spec.apiKey : config.upstream.apiKey
  return upstreamHeaderRules({
    defaultOriginator: config.session.originator,
    upstreamApiKey: apiKey,
    // In managed mode a client's authorization is a gateway key: never sent upstream, even to
    // an upstream without a key of its own (a self-hosted server).
    dropClientAuthorization: managed && apiKey === '',
    extra: { ...config.upstream.headers, ...spec.headers }
  })
}
