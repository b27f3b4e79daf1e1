/**
 * Automatic failover on etcd (--coordinator): the thin shell around decide.ts. Once a tick
 * (a fifth of the lease's TTL) it renews this node's lease, writes where the node stands and
 * reads the master key, the epoch counter and the other nodes in one transaction, decides, and
 * carries the decision out: take the master key, follow the node that holds it, or wait.
 *
 * The safety argument, in full in docs/history.md:
 * - At most one node holds the master key: it is taken only by a transaction that finds it
 *   absent, and it lives on its holder's lease.
 * - Epochs come from the counter beside it, changed in the same transaction on the condition
 *   that it is unchanged: each epoch belongs to one node, and they only grow.
 * - A master acknowledges nothing once its lease may have ended: the lease is valid until the
 *   moment its last renewal was *sent*, plus the TTL, minus a fifth of it, on this process's
 *   monotonic clock (etcd counts the TTL from when it received the renewal, which is later).
 *   So by the time etcd ends the lease and another node can take the key, this master has
 *   stopped acknowledging, without waiting for any event from etcd.
 */
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import { EtcdClient, type EtcdCompare } from './etcd-client.ts'
import { decide, type Decision, type SelfState } from './decide.ts'
import { epochKey, masterKey, nodesPrefix, parseEpoch, parseMaster, parseNode, parseSyncLsn, syncKey, type EpochRecord, type NodeRecord } from './records.ts'

export interface CoordinatorOptions {
  endpoints: readonly string[]
  prefix: string
  leaseTtlMs: number
  logger: Logger
  /** The node being coordinated (node-roles.ts behind it). */
  node: CoordinatedNode
}

/** What the coordinator needs of its node. */
export interface CoordinatedNode {
  self(): SelfState
  /**
   * Makes this node the master of `epoch` (it now holds the master key): fences the nodes at
   * `peers` and the ones it knows, refuses (throws) if one holds more of the log, then starts the
   * master's role and tells the others to follow it. A master that is already at `epoch` does
   * nothing.
   */
  takeOver(epoch: number, peers: readonly string[]): Promise<void>
  follow(url: string): Promise<void>
}

/** The part of the TTL a master gives up, for clock drift and a late timer. */
const leaseMarginFraction = 0.2
/** After a takeover that failed (another node holds more of the log), this many rank steps pass before this node tries again. */
const refusedBackoffSteps = 3

export class Coordinator {
  private readonly options: CoordinatorOptions
  private readonly etcd: EtcdClient
  private readonly logger: Logger
  private readonly tickMs: number
  /** How much later than the node before it in rank a node tries to take a free key. */
  private readonly rankStepMs: number
  private lease: { id: string; validUntil: number } | undefined
  /** The epoch this node took the master key for, while it holds it. */
  private holding: { epoch: number; lease: string; modRevision: number } | undefined
  /** Set while a takeover runs: the key is held, the role not yet started. */
  private takingOver = false
  private absentSince: number | undefined
  private notBefore = 0
  private timer: NodeJS.Timeout | undefined
  private renewalTimer: NodeJS.Timeout | undefined
  private renewing: Promise<void> = Promise.resolve()
  /** Ticks and operator promotions run one at a time. */
  private running: Promise<unknown> = Promise.resolve()
  private stopped = false
  private lastProblem: string | undefined
  private lastDecision: Decision | undefined
  private masterSeen: { id: string; url: string; epoch: number } | undefined
  /** The highest LSN written to PREFIX/sync by this master, and the highest asked for. */
  private publishedSyncLsn = 0
  private syncTarget = 0
  private syncPublishing: Promise<void> | undefined
  takeovers = 0

  constructor(options: CoordinatorOptions) {
    this.options = options
    this.logger = options.logger
    this.tickMs = Math.max(50, Math.floor(options.leaseTtlMs / 5))
    this.rankStepMs = this.tickMs * 2
    this.etcd = new EtcdClient(options.endpoints, Math.max(200, this.tickMs))
  }

  start(): void {
    this.scheduleRenewal(0)
    this.schedule(0)
  }

  /** A master gives its key up on a clean stop, so that a replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.renewalTimer)
    await Promise.all([this.running, this.renewing])
    const lease = this.lease
    this.lease = undefined
    this.holding = undefined
    if (lease !== undefined) await this.etcd.revoke(lease.id).catch(() => undefined)
  }

  /**
   * Why this master may not acknowledge a write now, or undefined when it may: it holds the
   * master key, on a lease that is still valid by its own clock, and its takeover is done.
   */
  leaseProblem(): string | undefined {
    if (this.holding === undefined) return 'this node does not hold the master key in etcd'
    if (this.takingOver) return 'this node is taking over as master'
    if (this.lease === undefined || this.lease.id !== this.holding.lease) return 'this master lost its lease in etcd'
    if (performance.now() >= this.lease.validUntil) return 'this master could not renew its lease in etcd in time'
    return undefined
  }

  /**
   * Before a write confirmed by replicas (sync=K) is acknowledged: its LSN is written to
   * PREFIX/sync, so that no replica without it can take over once the answer is out. One etcd
   * transaction covers every write waiting meanwhile; it holds only while this node holds the
   * master key (a deposed master's history is not the cluster's), else LEASE_LOST.
   */
  async publishSync(lsn: number): Promise<void> {
    this.syncTarget = Math.max(this.syncTarget, lsn)
    while (this.publishedSyncLsn < lsn) {
      this.syncPublishing ??= this.writeSync().finally(() => (this.syncPublishing = undefined))
      await this.syncPublishing
    }
  }

  private async writeSync(): Promise<void> {
    const holding = this.holding
    const target = this.syncTarget
    const failure = (why: string) => new TandemError('LEASE_LOST', `the write is committed and confirmed by replicas, but ${why}: it may or may not survive a failover (retry only with the same Idempotency-Key)`)
    if (holding === undefined) throw failure('this node no longer holds the master key')
    const { prefix } = this.options
    const answer = await this.etcd
      .txn([{ key: masterKey(prefix), target: 'MOD', revision: holding.modRevision }], [{ put: { key: syncKey(prefix), value: JSON.stringify({ lsn: target, id: this.options.node.self().id }) } }])
      .catch((error: unknown) => {
        throw failure(`etcd did not record it (${messageOf(error)})`)
      })
    if (!answer.succeeded) throw failure('the master key changed hands')
    this.publishedSyncLsn = Math.max(this.publishedSyncLsn, target)
  }

  status(): Record<string, unknown> {
    return {
      endpoints: this.options.endpoints,
      prefix: this.options.prefix,
      lease_ttl_ms: this.options.leaseTtlMs,
      has_lease: this.lease !== undefined && performance.now() < this.lease.validUntil,
      holds_master_key: this.holding !== undefined,
      master: this.masterSeen ?? null,
      decision: this.lastDecision === undefined ? null : this.lastDecision.kind === 'wait' ? `wait: ${this.lastDecision.reason}` : this.lastDecision.kind,
      takeovers: this.takeovers,
      last_problem: this.lastProblem ?? null,
    }
  }

  /**
   * A promotion asked by an operator (`tandem promote`): with etcd, only the node that takes the
   * master key may become master, so this takes it now if it is free (without the rank's wait)
   * and is refused while a master holds it.
   */
  promoteNow(): Promise<{ epoch: number }> {
    return this.exclusive(() => this.promoteNowAlone())
  }

  private async promoteNowAlone(): Promise<{ epoch: number }> {
    await this.renewing
    const view = await this.read()
    if (view.master !== undefined) {
      const holder = view.master === 'invalid' ? 'a value Tandem did not write' : `node ${view.master.record.id} at ${view.master.record.url}`
      throw new TandemError('PROMOTION_REFUSED', `the master key in etcd is held by ${holder}: with --coordinator a replica becomes master only when it is free (stop the master, and the most up-to-date replica takes over within the lease TTL)`)
    }
    const epoch = await this.take(view, false)
    if (epoch === undefined) throw new TandemError('PROMOTION_REFUSED', 'another node took the master key first')
    return { epoch }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      void this.exclusive(() => this.tick()).finally(() => this.schedule(this.tickMs))
    }, delayMs)
  }

  /**
   * The lease is renewed on a loop of its own: a tick's action (following a master that answers
   * slowly, a takeover fencing a paused node) can take longer than the lease's margin, and must
   * not make the master stop acknowledging.
   */
  private scheduleRenewal(delayMs: number): void {
    if (this.stopped) return
    this.renewalTimer = setTimeout(() => {
      this.renewing = this.renewLease()
        .catch((error: unknown) => this.problem(error))
        .finally(() => this.scheduleRenewal(this.tickMs))
    }, delayMs)
  }

  private problem(error: unknown): void {
    const message = messageOf(error)
    if (message !== this.lastProblem) this.logger.warn({ err: message }, 'coordinator: a tick failed')
    this.lastProblem = message
  }

  private exclusive<T>(run: () => Promise<T>): Promise<T> {
    const next = this.running.then(run)
    this.running = next.catch(() => undefined)
    return next
  }

  private async tick(): Promise<void> {
    try {
      // The first tick waits for a lease; later ones use the renewal loop's.
      if (this.lease === undefined) await this.renewing
      const view = await this.read()
      const decision = decide({ ...view, rankStepMs: this.rankStepMs })
      this.lastDecision = decision
      await this.act(decision, view)
      this.lastProblem = undefined
    } catch (error) {
      this.problem(error)
    }
  }

  /** Renews this node's lease, or takes a new one when etcd ended it; one renewal at a time. */
  private async renewLease(): Promise<void> {
    const ttlSeconds = Math.max(1, Math.round(this.options.leaseTtlMs / 1000))
    const sentAt = performance.now()
    if (this.lease !== undefined) {
      const ttl = await this.etcd.keepAlive(this.lease.id)
      if (ttl > 0) {
        this.lease.validUntil = sentAt + ttl * 1000 * (1 - leaseMarginFraction)
        return
      }
      this.logger.warn({ lease: this.lease.id, holding: this.holding?.epoch }, 'coordinator: etcd ended this node\'s lease')
      this.lease = undefined
      this.holding = undefined
    }
    const granted = await this.etcd.grantLease(ttlSeconds)
    this.lease = { id: granted.id, validUntil: sentAt + granted.ttlSeconds * 1000 * (1 - leaseMarginFraction) }
  }

  /** Writes where this node stands, and reads the master key, the epoch counter and the other nodes, in one transaction. */
  private async read(): Promise<Omit<Parameters<typeof decide>[0], 'rankStepMs'> & { epochRecord: EpochRecord | undefined; epochModRevision: number; masterModRevision: number }> {
    const { prefix } = this.options
    const self = this.options.node.self()
    const record: NodeRecord = { id: self.id, url: self.url, role: self.role === 'master' && !self.deposed ? 'master' : 'replica', epoch: self.epoch, lsn: self.lsn, eligible: self.eligible }
    const answer = await this.etcd.txn([], [
      ...(this.lease === undefined ? [] : [{ put: { key: `${nodesPrefix(prefix)}${self.id}`, value: JSON.stringify(record), lease: this.lease.id } }]),
      { range: { key: masterKey(prefix) } },
      { range: { key: epochKey(prefix) } },
      { range: { key: nodesPrefix(prefix), prefix: true, limit: 1000 } },
      { range: { key: syncKey(prefix) } },
    ])
    const [masterKv, epochKv, nodeKvs, syncKv] = [answer.ranges[0]?.[0], answer.ranges[1]?.[0], answer.ranges[2] ?? [], answer.ranges[3]?.[0]]
    const parsedMaster = masterKv === undefined ? undefined : parseMaster(masterKv.value)
    const master = masterKv === undefined ? undefined : parsedMaster === undefined ? ('invalid' as const) : { record: parsedMaster, lease: masterKv.lease }
    this.masterSeen = parsedMaster
    const now = performance.now()
    if (masterKv === undefined) this.absentSince ??= now
    else this.absentSince = undefined
    if (this.holding !== undefined && (masterKv === undefined || masterKv.lease !== this.holding.lease)) {
      this.logger.warn({ epoch: this.holding.epoch }, 'coordinator: the master key is no longer this node\'s')
      this.holding = undefined
    }
    const others = nodeKvs.map((kv) => parseNode(kv.value)).filter((n): n is NodeRecord => n !== undefined && n.id !== self.id)
    return {
      self,
      master,
      ownLease: this.lease?.id,
      others,
      absentForMs: this.absentSince === undefined ? 0 : now - this.absentSince,
      syncLsn: parseSyncLsn(syncKv?.value),
      epochRecord: epochKv === undefined ? undefined : parseEpoch(epochKv.value),
      epochModRevision: epochKv?.modRevision ?? 0,
      masterModRevision: masterKv?.modRevision ?? 0,
    }
  }

  private async act(decision: Decision, view: Awaited<ReturnType<Coordinator['read']>>): Promise<void> {
    switch (decision.kind) {
      case 'hold':
      case 'wait':
        return
      case 'follow':
        this.holding = undefined
        return this.options.node.follow(decision.url)
      case 'release':
        this.holding = undefined
        await this.releaseKey(view.masterModRevision)
        this.logger.warn('coordinator: released the master key (it named this node, which is a replica or a damaged master)')
        return
      case 'take':
        if (performance.now() < this.notBefore) return
        await this.take(view, decision.reclaim)
    }
  }

  /** Takes the master key for the next epoch and makes this node master of it; undefined when another node took it first. */
  private async take(view: Awaited<ReturnType<Coordinator['read']>>, reclaim: boolean): Promise<number | undefined> {
    const lease = this.lease
    if (lease === undefined) return undefined
    const { self, epochRecord } = view
    const { prefix } = this.options
    // A master that held the last epoch (or ran before etcd knew any) keeps it; any other taking is a new epoch.
    const keeps = self.role === 'master' && !self.deposed && (epochRecord === undefined ? view.epochModRevision === 0 : epochRecord.id === self.id && epochRecord.epoch === self.epoch)
    const epoch = keeps ? self.epoch : Math.max(epochRecord?.epoch ?? 0, self.epoch) + 1
    const conditions: EtcdCompare[] = [
      { key: masterKey(prefix), target: reclaim ? 'MOD' : 'CREATE', revision: reclaim ? view.masterModRevision : 0 },
      { key: epochKey(prefix), target: 'MOD', revision: view.epochModRevision },
    ]
    const answer = await this.etcd.txn(conditions, [
      { put: { key: masterKey(prefix), value: JSON.stringify({ id: self.id, url: self.url, epoch }), lease: lease.id } },
      { put: { key: epochKey(prefix), value: JSON.stringify({ epoch, id: self.id }) } },
      { range: { key: masterKey(prefix) } },
    ])
    if (!answer.succeeded) return undefined
    const modRevision = answer.ranges[0]?.[0]?.modRevision ?? 0
    this.holding = { epoch, lease: lease.id, modRevision }
    this.logger.warn({ epoch, reclaim }, 'coordinator: took the master key')
    this.takingOver = true
    try {
      await this.options.node.takeOver(epoch, view.others.map((n) => n.url))
      this.takeovers++
      return epoch
    } catch (error) {
      // Another node holds more of the log (or this one could not start its role): give the
      // key back, so that the node before it in rank takes it.
      this.logger.warn({ epoch, err: messageOf(error) }, 'coordinator: the takeover failed; releasing the master key')
      this.holding = undefined
      this.notBefore = performance.now() + refusedBackoffSteps * this.rankStepMs
      await this.releaseKey(modRevision).catch(() => undefined)
      throw error
    } finally {
      this.takingOver = false
    }
  }

  /** Deletes the master key, on the condition that it is still the version this node read or wrote. */
  private async releaseKey(modRevision: number): Promise<void> {
    const key = masterKey(this.options.prefix)
    await this.etcd.txn([{ key, target: 'MOD', revision: modRevision }], [{ delete: { key } }])
  }
}
