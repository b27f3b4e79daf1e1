/**
 * Which role a node plays, and changes to it: the role its saved state (node.json) or command
 * line gives it at start, then promote, fence and follow at run time, one change at a time, each
 * saved before it is announced. It owns the master's or the replica's parts, since it is what
 * replaces them; TandemNode reads them to answer the API. Apart from TandemNode because a role
 * change is a protocol of its own (fence, compare, start the other role, tell the peers), while
 * the node's other parts (reads, snapshots, HTTP) stay the same across it.
 */
import type { Clock } from '../shared/clock.ts'
import { TandemError } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { SchemaGeneration } from '../storage/index.ts'
import type { Role } from '../http-api/node-api.ts'
import type { Executor } from '../jobs/index.ts'
import type { NodeConfig } from './config.ts'
import type { LsnWaiters } from './lsn-waiters.ts'
import { MasterRole } from './master-role.ts'
import { ReplicaRole } from './replica-role.ts'
import { loadNodeState, saveNodeState } from './node-state.ts'
import { fencePeers, isAhead, refuseIfBehind, statusOf, surveyPeers, tellToFollow, type FenceAnswer, type FenceReply } from './promotion.ts'
import type { Vote, VoteCandidate } from '../replication-log/log-store.ts'
import type { Position } from '../replication-log/log-entry.ts'
import { sleep } from '../shared/wait.ts'
import type { ClusterId, PeerCredentials } from '../security/index.ts'

/** How long a promotion waits to catch up with a reachable old master (a planned switchover). */
const catchUpBeforePromotionMs = 5000
/** Rounds of votes a promotion asks for before it gives up (each after a split vote). */
const promotionRoundsMax = 5
/** After a split vote a candidate waits 1–2× this (times the round) before it asks again. */
const splitWaitMs = 60

/** This node accepted another candidate: its own promotion gives way. */
function gaveWay(vote: Vote | undefined): TandemError {
  const winner = vote === undefined ? 'another node' : `node ${vote.candidate.id} at ${vote.candidate.url}`
  return new TandemError('PROMOTION_REFUSED', `${winner} is being promoted${vote === undefined ? '' : ` to epoch ${vote.epoch}`}, and this node accepted it: this promotion gives way (the new master tells this node to follow it)`, {
    ...(vote === undefined ? {} : { winner: { id: vote.candidate.id, url: vote.candidate.url, epoch: vote.epoch } }),
  })
}

export interface NodeRolesOptions {
  config: NodeConfig
  dbPath: string
  nodeId: string
  /** The node's own URL, known once its HTTP server listens. */
  url: () => string
  clock: Clock
  logger: Logger
  /** The node's schema generation: it outlives role changes. */
  schema: SchemaGeneration
  /** Told of every LSN a role commits or applies. */
  waiters: LsnWaiters
  /** Runs the tasks a master leases to this replica (--jobs). */
  executor: Executor | undefined
  /** Around a snapshot install on a replica: the node closes and reopens what reads the file. */
  onSwap: { before: () => void; after: () => void }
  /** What this node presents to the others (the cluster secret's token, TLS). */
  peers: PeerCredentials
  /** The cluster this node belongs to. */
  cluster: ClusterId
  /** With a coordinator: why the master may not acknowledge a write now (its lease), or undefined. */
  leaseProblem?: () => string | undefined
  /** With a coordinator: records a replica-confirmed write's LSN before it is acknowledged. */
  beforeSyncAck?: (lsn: number) => Promise<void>
}

export class NodeRoles {
  private readonly options: NodeRolesOptions
  private readonly config: NodeConfig
  private readonly logger: Logger
  /** Exactly one of master and replica is set, except inside a role change. */
  private masterRole: MasterRole | undefined
  private replicaRole: ReplicaRole | undefined
  /** The master a replica follows. */
  private followedUrl: string | undefined
  /** Role changes run one at a time. */
  private changing: Promise<unknown> = Promise.resolve()

  /** Starts the role this node's saved state or, failing that, its command line gives it. */
  constructor(options: NodeRolesOptions) {
    this.options = options
    this.config = options.config
    this.logger = options.logger
    // A node never becomes master by itself: one that was told to follow another master comes
    // back as that replica, even when started as `tandem master`; while a former master started
    // as `tandem replica --master URL` is demoted, as the operator says.
    const state = loadNodeState(this.config.dataDir)
    const role = state?.role === 'replica' ? 'replica' : this.config.role
    const masterUrl = state?.role === 'replica' ? state.masterUrl : this.config.masterUrl
    if (state !== undefined && (state.role !== this.config.role || (role === 'replica' && masterUrl !== this.config.masterUrl))) {
      this.logger.warn({ state, commandLine: { role: this.config.role, masterUrl: this.config.masterUrl } }, `this node was made ${role}${role === 'replica' ? ` of ${masterUrl}` : ''} at epoch ${state.epoch}; starting as that, not as the command line says`)
    }
    if (role === 'master') this.startMaster()
    else {
      if (masterUrl === undefined) throw new TandemError('BAD_REQUEST', 'a replica needs --master URL')
      this.startReplica(masterUrl)
      if (state?.role === 'master') {
        saveNodeState(this.config.dataDir, { role: 'replica', masterUrl, epoch: state.epoch, changedAt: new Date(options.clock.now()).toISOString() })
      }
    }
  }

  get master(): MasterRole | undefined {
    return this.masterRole
  }

  get replica(): ReplicaRole | undefined {
    return this.replicaRole
  }

  get role(): Role {
    return this.masterRole !== undefined ? 'master' : 'replica'
  }

  /** The master's URL: this node's own on the master, the followed one on a replica. */
  masterUrl(): string | undefined {
    return this.role === 'master' ? this.options.url() : this.followedUrl
  }

  /** The highest epoch this node knows: a replica may know one it has no entry of yet. */
  epoch(): number {
    if (this.masterRole !== undefined) return this.masterRole.epoch()
    const applier = this.replicaRole?.applier
    return applier === undefined ? 1 : Math.max(applier.position.epoch, applier.store.epoch())
  }

  appliedLsn(): number {
    return this.masterRole?.pipeline.lastLsn ?? this.replicaRole?.applier.position.lsn ?? 0
  }

  /**
   * Makes this replica the master of a new epoch, which a majority of the nodes it knows (itself
   * included) must accept first: a compare-and-set on each (LogStore.grantVote), so of two
   * promotions racing for one epoch at most one wins. A node that accepts is fenced (the old
   * master stops taking writes; replicas stop following it and drop what they have not applied),
   * so positions stop moving; then, unless `force`, a replica holding more of the log refuses the
   * promotion; then this node becomes the master and tells the others to follow it before it
   * answers. Split votes (another candidate asked for the epoch too) are retried at the next
   * epoch after a random wait; a candidate that meanwhile accepted another one gives way to it. `force` promotes without a majority (two
   * nodes, one lost) and past a replica further ahead. See promotion.ts.
   */
  promote(force: boolean): Promise<{ epoch: number; lsn: number; url: string }> {
    return this.oneAtATime(async () => {
      const replica = this.replicaRole
      if (replica === undefined) throw new TandemError('BAD_REQUEST', `node ${this.options.nodeId} is already the master`)
      const me: VoteCandidate = { id: this.options.nodeId, url: this.options.url() }
      const peers = [...new Set([...replica.follower.peers, ...(this.followedUrl === undefined ? [] : [this.followedUrl])])].filter((u) => u !== me.url)
      const voters = peers.length + 1
      let epoch = 0
      let fenced: FenceAnswer[] = []
      const votedBefore = replica.applier.store.vote()
      for (let round = 1; ; round++) {
        const known = await surveyPeers(peers, this.options.peers)
        // Did this node accept another candidate since this promotion began (while it asked, or
        // waited)? That one is winning, or has won: asking for a later epoch would depose it.
        const accepted = replica.applier.store.vote()
        if (accepted !== undefined && accepted.candidate.id !== me.id && accepted.epoch !== votedBefore?.epoch) throw gaveWay(accepted)
        epoch = Math.max(this.epoch(), accepted?.epoch ?? 0, ...known.map((p) => p.epoch)) + 1
        const own = replica.applier.store.grantVote(epoch, me, true)
        if (!own.granted) throw gaveWay(own.vote)
        // This replica keeps following the old master while it asks: in a planned switchover it
        // catches up with it first (fenceForPromotion); then it follows nobody.
        fenced = await this.fenceForPromotion(peers, epoch, me)
        replica.follower.fenceBelow(epoch)
        // A replica holding more of the log refused this candidate, and will refuse it at any
        // epoch: only it can win without discarding entries (it may be racing for it now).
        if (!force) refuseIfBehind(replica.applier.position, fenced)
        const grants = 1 + fenced.filter((a) => a.granted).length
        if (force || grants * 2 > voters) break
        const rival = fenced.find((a) => !a.granted && a.vote !== undefined && a.vote.candidate.id !== me.id)?.vote
        // Retry only a split vote: nodes that did not answer will not answer sooner.
        if (rival === undefined || round >= promotionRoundsMax) {
          throw new TandemError(
            'PROMOTION_REFUSED',
            `${grants} of the ${voters} nodes this one knows accepted epoch ${epoch}${rival === undefined ? '' : ` (node ${rival.candidate.id} at ${rival.candidate.url} asks for epoch ${rival.epoch} too)`}: a promotion needs a majority (${Math.floor(voters / 2) + 1}), so that two nodes can never both be master; bring the others back, or pass force if they are gone for good`,
            { grants, voters },
          )
        }
        // Split votes: each candidate waits a random while, so that one of them asks first next time.
        await sleep((splitWaitMs + Math.random() * splitWaitMs) * round)
      }
      return this.becomeMaster(epoch, peers, fenced)
    })
  }

  /**
   * With a coordinator (etcd), this node took the master key for `epoch`: etcd's transaction
   * already made it the only candidate, so no majority is asked. It fences the nodes it knows
   * and `others` (the ones etcd lists), refuses if one holds more of the log (the coordinator
   * then gives the key back), and becomes the master. A master that took the key again at a
   * new epoch (it lost its lease, then nobody else took over) starts that epoch from its own log.
   */
  takeOver(epoch: number, others: readonly string[]): Promise<void> {
    return this.oneAtATime(async () => {
      const me: VoteCandidate = { id: this.options.nodeId, url: this.options.url() }
      const master = this.masterRole
      if (master !== undefined) {
        if (master.deposedEpoch === undefined && master.epoch() === epoch) return
        const replicas = master.replicaInfos(this.options.clock.now()).map((r) => r.url)
        const peers = [...new Set([...replicas, ...others])].filter((u) => u !== me.url)
        await master.close()
        this.masterRole = undefined
        await this.reign(epoch, peers, false, { epoch, peers }, 'took the master key again: a new epoch from this master\'s own log')
        return
      }
      const replica = this.replicaRole!
      const peers = [...new Set([...replica.follower.peers, ...(this.followedUrl === undefined ? [] : [this.followedUrl]), ...others])].filter((u) => u !== me.url)
      const own = replica.applier.store.grantVote(epoch, me, true)
      if (!own.granted) throw gaveWay(own.vote)
      // An old master that still answers (it lost etcd, not the network) is fenced first and
      // caught up with, as in a planned switchover: it holds entries nobody else may have.
      const fenced = await this.fenceForPromotion(peers, epoch, me)
      replica.follower.fenceBelow(epoch)
      refuseIfBehind(replica.applier.position, fenced, true)
      // Not waiting for the peers to answer: one that is paused would hold the new master's
      // first writes for the request's timeout, and every node learns the master from etcd too.
      await this.becomeMaster(epoch, peers, fenced, false)
    })
  }

  /** The end of a promotion or takeover: this replica stops following, becomes the master of `epoch`, and tells the others. */
  private async becomeMaster(epoch: number, peers: readonly string[], fenced: readonly FenceAnswer[], waitForPeers = true): Promise<{ epoch: number; lsn: number; url: string }> {
    const replica = this.replicaRole!
    const position = replica.applier.position
    await replica.close()
    this.replicaRole = undefined
    this.options.executor?.stopAll('this replica was promoted to master')
    await this.reign(epoch, peers, waitForPeers, { epoch, lsn: position.lsn, peers, granted: fenced.filter((a) => a.granted).map((p) => p.url) }, 'promoted to master')
    return { epoch, lsn: position.lsn, url: this.options.url() }
  }

  /** Starts the master's role at `epoch`, saves it, and tells `peers` to follow (waiting for their first answers, or not). */
  private async reign(epoch: number, peers: readonly string[], waitForPeers: boolean, details: Record<string, unknown>, message: string): Promise<void> {
    this.startMaster(epoch)
    saveNodeState(this.config.dataDir, { role: 'master', epoch, changedAt: new Date(this.options.clock.now()).toISOString() })
    this.logger.warn(details, message)
    const told = tellToFollow(peers, this.options.url(), this.logger, this.options.peers)
    if (waitForPeers) await told
  }

  /**
   * Asks the peers to accept this node for `epoch`. A planned switchover: the old master answers.
   * It is asked first (it takes no more writes but still streams), and this node catches up with
   * everything it committed, so even asynchronous writes it acknowledged survive. Bounded: a
   * master that does not answer is simply fenced later.
   */
  private async fenceForPromotion(peers: readonly string[], epoch: number, me: VoteCandidate): Promise<FenceAnswer[]> {
    const replica = this.replicaRole!
    const answers: FenceAnswer[] = []
    const oldMasterUrl = this.followedUrl
    if (oldMasterUrl !== undefined && peers.includes(oldMasterUrl)) {
      const oldMaster = (await fencePeers([oldMasterUrl], epoch, me, replica.applier.position, this.options.peers))[0]
      if (oldMaster !== undefined) answers.push(oldMaster)
      if (oldMaster?.granted === true && oldMaster.lsn > replica.applier.position.lsn) {
        await this.options.waiters.wait(replica.applier.position.lsn, oldMaster.lsn, catchUpBeforePromotionMs).catch(() => {
          this.logger.warn({ masterLsn: oldMaster.lsn, lsn: replica.applier.position.lsn }, 'did not catch up with the old master in time; promoting from here')
        })
      }
    }
    answers.push(...(await fencePeers(peers.filter((u) => u !== oldMasterUrl), epoch, me, replica.applier.position, this.options.peers)))
    return answers
  }

  /**
   * A promotion of `candidate` to `epoch` is under way: this node accepts it unless it accepted
   * another candidate for that epoch or knows a later one (LogStore.grantVote), or, on a replica,
   * holds more of the log than the candidate's `candidatePosition`. Once it accepts,
   * a master stops taking writes and a replica stops following an older master. Returns the
   * answer and where this node stands, for the promotion to compare.
   */
  fence(epoch: number, candidate: VoteCandidate, candidatePosition: Pick<Position, 'epoch' | 'lsn'>): FenceReply {
    let answer: { granted: boolean; vote: Vote | undefined }
    if (this.masterRole !== undefined) answer = this.masterRole.grantVote(epoch, candidate)
    else if (isAhead(this.replicaRole!.applier.position, candidatePosition)) {
      // A replica never accepts a candidate with less of the log (it would discard entries this
      // one holds, maybe acknowledged ones). A master does: the candidate catches up with it.
      answer = { granted: false, vote: this.replicaRole!.applier.store.vote() }
    } else {
      answer = this.replicaRole!.applier.store.grantVote(epoch, candidate, true)
      if (answer.granted) this.replicaRole!.follower.fenceBelow(epoch)
    }
    const position = this.masterRole !== undefined ? { epoch: this.masterRole.epoch(), lsn: this.appliedLsn() } : this.replicaRole!.applier.position
    return { granted: answer.granted, ...(answer.vote === undefined ? {} : { vote: answer.vote }), role: this.role, epoch: this.epoch(), position, id: this.options.nodeId }
  }

  /**
   * Follows `masterUrl` from now on. A master steps down: it stops taking writes at once, becomes
   * a replica, and rejoins (its entries past the fork point are discarded, kept in a file).
   */
  follow(masterUrl: string, caller: { byNode: boolean } = { byNode: true }): Promise<{ master: string; epoch: number }> {
    return this.oneAtATime(async () => {
      const target = masterUrl.replace(/\/+$/, '')
      if (target === this.options.url()) throw new TandemError('BAD_REQUEST', 'a node cannot follow itself')
      // The node proves itself to the master it follows, so it must never call a server a user
      // named just to learn it: that server would receive the cluster secret's token.
      if (!caller.byNode && this.options.peers.provesNode && !this.knownMembers().includes(target)) {
        throw new TandemError('FORBIDDEN', `${target} is not a node this one knows as a member of its cluster (its master, or a replica its master listed): start this node with --master ${target} instead`, { known: this.knownMembers() })
      }
      const theirs = await statusOf(target, this.options.peers)
      if (theirs === undefined) throw new TandemError('NO_MASTER', `${target} is not reachable (or refused this node: is it given the same --cluster-secret-file?)`)
      // Never step down to, or copy, a master of another cluster.
      this.options.cluster.check(theirs.clusterId, `the master at ${target}`)
      if (theirs.role !== 'master') throw new TandemError('BAD_REQUEST', `${target} is not a master (it is a ${theirs.role})`)
      const mine = this.epoch()
      if (this.config.fencing && theirs.epoch < mine) {
        throw new TandemError('BAD_REQUEST', `${target} serves epoch ${theirs.epoch}, older than this node's ${mine}: it was deposed`)
      }
      // A master whose file was damaged copies the new master's whole database, not just its log.
      const damage = this.masterRole?.pipeline.damage
      if (this.masterRole !== undefined) {
        this.masterRole.depose(theirs.epoch, `told to follow ${target}`)
        await this.masterRole.close()
        this.masterRole = undefined
      } else if (this.replicaRole !== undefined) {
        if (this.followedUrl === target) {
          this.replicaRole.applier.store.raiseEpoch(theirs.epoch)
          return { master: target, epoch: theirs.epoch }
        }
        await this.replicaRole.close()
        this.replicaRole = undefined
      }
      this.startReplica(target, theirs.epoch).start(damage)
      saveNodeState(this.config.dataDir, { role: 'replica', masterUrl: target, epoch: theirs.epoch, changedAt: new Date(this.options.clock.now()).toISOString() })
      this.logger.warn({ master: target, epoch: theirs.epoch }, 'now following a new master')
      return { master: target, epoch: theirs.epoch }
    })
  }

  /** URLs of the nodes this one knows belong to its cluster: its master, and the replicas a master listed or serves. */
  private knownMembers(): string[] {
    const urls = [...(this.followedUrl === undefined ? [] : [this.followedUrl]), ...(this.replicaRole?.follower.peers ?? []), ...(this.masterRole?.replicaInfos(this.options.clock.now()).map((r) => r.url) ?? [])]
    return [...new Set(urls.map((u) => u.replace(/\/+$/, '')))]
  }

  /** Runs `change` once the changes asked before it are done; one that failed does not stop it. */
  private oneAtATime<T>(change: () => Promise<T>): Promise<T> {
    const run = this.changing.then(change)
    this.changing = run.catch(() => undefined)
    return run
  }

  private startMaster(promoteToEpoch?: number): void {
    const { config, dbPath, nodeId, clock, logger, schema, waiters } = this.options
    const master = new MasterRole(config, dbPath, nodeId, clock, logger, schema, this.options.cluster.ensure(), promoteToEpoch)
    master.onCommit((entry) => waiters.reached(entry.lsn))
    if (this.options.leaseProblem !== undefined) master.leaseProblem = this.options.leaseProblem
    if (this.options.beforeSyncAck !== undefined) master.beforeSyncAck = this.options.beforeSyncAck
    this.masterRole = master
    this.followedUrl = undefined
    waiters.reached(master.pipeline.lastLsn)
  }

  private startReplica(masterUrl: string, raiseEpochTo?: number): ReplicaRole {
    const { config, dbPath, nodeId, url: ownUrl, clock, logger, schema, waiters, executor, onSwap } = this.options
    const url = masterUrl.replace(/\/+$/, '')
    const replica = new ReplicaRole({ ...config, masterUrl: url }, dbPath, nodeId, ownUrl, clock, logger, schema, onSwap, this.options.peers, this.options.cluster)
    // Durable before following: a replica that knows epoch E never follows an older master again.
    if (raiseEpochTo !== undefined) replica.applier.store.raiseEpoch(raiseEpochTo)
    replica.follower.on('applied', (lsn) => waiters.reached(lsn))
    if (executor !== undefined) {
      replica.follower.on('welcome', () => executor.connected((message) => replica.follower.send(message)))
      replica.follower.on('job', (message) => executor.receive(message))
    }
    this.replicaRole = replica
    this.followedUrl = url
    waiters.reached(replica.applier.position.lsn)
    return replica
  }
}
