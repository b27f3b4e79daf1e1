/**
 * What a node does about the master key, given what it read from etcd and where it stands: a
 * pure function (no etcd, no timers), so every case is a unit test. coordinator.ts reads,
 * calls it once a tick, and carries the decision out.
 *
 * - The key names this node, on this node's lease, and it is master: it holds it (its lease is
 *   renewed apart from this). On an older lease of its own (it restarted within the TTL): it
 *   takes the key over, on the condition that it is unchanged. Naming it while it is a replica,
 *   or a master whose database file is damaged: it releases the key, since a master that does
 *   not know it is one, or cannot write, must not block failover.
 * - The key names another node: a master steps down and follows it; a replica that follows
 *   another URL follows it.
 * - The key is absent: an eligible node takes it after a wait of its rank × rankStepMs since it
 *   first saw it absent. Rank is how many live, eligible nodes stand before it: a node that says
 *   it is master (an old master that lost its lease and is back), then later epochs, then more
 *   of the log, then the smaller id. So the most advanced replica tries first, and the others
 *   only when it did not manage; its takeover still checks the others' positions after fencing
 *   them (NodeRoles.takeOver), so a stale record costs time, never an acknowledged write.
 *   A replica behind the LSN a master published as acknowledged with replica confirmations
 *   (`sync`) never takes it: it would lose writes acknowledged as replicated.
 */
import type { MasterRecord, NodeRecord } from './records.ts'

export interface SelfState {
  id: string
  url: string
  role: 'master' | 'replica'
  epoch: number
  lsn: number
  /** A master that a higher epoch deposed. */
  deposed: boolean
  /** A master whose database file SQLite found damaged: it hands the key over and takes no writes. */
  damaged: boolean
  eligible: boolean
  /** The master a replica follows. */
  followedUrl: string | undefined
}

export interface CoordinatorView {
  self: SelfState
  /** The master key: absent, unreadable (a value Tandem did not write), or parsed. */
  master: { record: MasterRecord; lease: string } | 'invalid' | undefined
  /** This node's current lease, when it has one. */
  ownLease: string | undefined
  /** The other nodes' records (their leases are alive, or etcd would have removed them). */
  others: readonly NodeRecord[]
  /** How long this node has seen the master key absent (0 when it is present). */
  absentForMs: number
  /** The highest LSN a master published as acknowledged with replica confirmations (PREFIX/sync). */
  syncLsn: number
  rankStepMs: number
}

export type Decision =
  | { kind: 'hold' }
  | { kind: 'wait'; reason: string }
  | { kind: 'take'; reclaim: boolean }
  | { kind: 'follow'; url: string; epoch: number }
  | { kind: 'release' }

export function decide(view: CoordinatorView): Decision {
  const { self, master } = view
  if (master === 'invalid') return { kind: 'wait', reason: 'the master key holds a value Tandem did not write' }
  if (master !== undefined) {
    const { record, lease } = master
    if (record.id === self.id) {
      if (self.role === 'replica' || self.damaged) return { kind: 'release' }
      if (view.ownLease !== undefined && lease === view.ownLease) return { kind: 'hold' }
      return { kind: 'take', reclaim: true }
    }
    if (self.role === 'master' || self.followedUrl !== record.url) return { kind: 'follow', url: record.url, epoch: record.epoch }
    return { kind: 'wait', reason: `following the master ${record.id} at ${record.url}` }
  }
  if (!self.eligible) return { kind: 'wait', reason: 'this node is not eligible to become master' }
  // A replica without every write a master acknowledged as replicated must not lose them: it
  // waits for one that has them (or for an operator's `tandem promote`).
  if (self.role === 'replica' && self.lsn < view.syncLsn) return { kind: 'wait', reason: `this replica (LSN ${self.lsn}) lacks writes acknowledged with sync up to LSN ${view.syncLsn}` }
  if (view.ownLease === undefined) return { kind: 'wait', reason: 'this node has no lease yet' }
  const rank = rankOf(self, view.others)
  if (view.absentForMs >= rank * view.rankStepMs) return { kind: 'take', reclaim: false }
  return { kind: 'wait', reason: `${rank} node(s) rank before this one for the master key` }
}

/** How many live, eligible nodes stand before `self` for the master key. */
export function rankOf(self: SelfState, others: readonly NodeRecord[]): number {
  return others.filter((other) => other.id !== self.id && other.eligible && before(other, self)).length
}

function before(a: Pick<NodeRecord, 'role' | 'epoch' | 'lsn' | 'id'>, b: Pick<SelfState, 'role' | 'epoch' | 'lsn' | 'id'>): boolean {
  if ((a.role === 'master') !== (b.role === 'master')) return a.role === 'master'
  if (a.epoch !== b.epoch) return a.epoch > b.epoch
  if (a.lsn !== b.lsn) return a.lsn > b.lsn
  return a.id < b.id
}
