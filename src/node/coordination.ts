/**
 * What the coordinator (automatic failover on etcd, coordinator/) sees of this node and may do
 * to it: where it stands, whether it may become master, and the role changes it asks for.
 */
import { Coordinator } from '../coordinator/index.ts'
import type { Logger } from '../shared/logger.ts'
import type { NodeConfig } from './config.ts'
import type { NodeRoles } from './node-roles.ts'

export function coordinate(config: NodeConfig, endpoints: readonly string[], roles: NodeRoles, node: { id: string; url: () => string }, logger: Logger): Coordinator {
  return new Coordinator({
    endpoints,
    prefix: config.coordinatorPrefix,
    leaseTtlMs: config.coordinatorTtlMs,
    logger,
    node: {
      self: () => ({
        id: node.id,
        url: node.url(),
        role: roles.role,
        epoch: roles.epoch(),
        lsn: roles.appliedLsn(),
        deposed: roles.master?.deposedEpoch !== undefined,
        damaged: roles.master?.pipeline.damage !== undefined,
        eligible: isEligible(config, roles),
        followedUrl: roles.role === 'replica' ? roles.masterUrl() : undefined,
      }),
      takeOver: (epoch, peers) => roles.takeOver(epoch, peers),
      follow: async (url) => {
        await roles.follow(url, { byNode: true })
      },
    },
  })
}

/**
 * Whether this node may become master by itself: a master whose file is not damaged, or a
 * replica that is not delayed (behind on purpose) and is not an empty one that has heard from no
 * master since it started (a cluster starting, its master not up yet: it knows of no history to
 * carry on). `tandem promote` can still make any replica master.
 */
function isEligible(config: NodeConfig, roles: NodeRoles): boolean {
  if (roles.role === 'master') return roles.master?.pipeline.damage === undefined
  if (config.applyDelayMs > 0) return false
  return (roles.replica?.follower.lastContactAt ?? 0) !== 0 || roles.appliedLsn() > 0
}
