/**
 * One `tandem` process: the composition root. It opens the database, builds the master's or
 * the replica's parts, serves the HTTP API, and prints one line when ready. Start order: storage,
 * role, HTTP (so the URL is known), then following; stop order is the reverse.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { systemClock, type Clock } from '../shared/clock.ts'
import { TandemError } from '../shared/errors.ts'
import { createLogger, type Logger } from '../shared/logger.ts'
import type { WriteOutcome, WriteRequest } from '../master/write-pipeline.ts'
import type { SyncOutcome, WriteOptions } from '../master/write-options.ts'
import { SchemaGeneration, databasePath, type SqlStatement, type StatementResult } from '../storage/index.ts'
import { createHttpServer } from '../http-api/server.ts'
import type { JobsApi, NodeApi, NodeInfo, Role, Snapshot } from '../http-api/node-api.ts'
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import { Executor } from '../jobs/index.ts'
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import { defaultConfig, type NodeConfig } from './config.ts'
import { NodeReads } from './node-reads.ts'
import { LsnWaiters } from './lsn-waiters.ts'
import { MasterRole } from './master-role.ts'
import { ReplicaRole } from './replica-role.ts'
import { loadNodeId } from './node-identity.ts'
import { Snapshots } from './snapshots.ts'
import { loadNodeState, saveNodeState } from './node-state.ts'
import { fencePeers, refuseIfBehind, statusOf, surveyPeers, tellToFollow } from './promotion.ts'

/** How long a promotion waits to catch up with a reachable old master (a planned switchover). */
const catchUpBeforePromotionMs = 5000

export type NodeOptions = Partial<NodeConfig> & Pick<NodeConfig, 'role' | 'dataDir' | 'port'>

export class TandemNode implements NodeApi {
  readonly nodeId: string
  url = ''
  readonly config: NodeConfig
  private readonly clock: Clock
  private readonly logger: Logger
  private readonly dbPath: string
  /** Where client reads run, and their connections (node-reads.ts). */
  private readonly reads: NodeReads
  /** Moved by the role that writes, read by every read connection: it outlives role changes. */
  private readonly schema = new SchemaGeneration()
  /** Exactly one of master and replica is set, except inside a role change. */
  private master: MasterRole | undefined
  private replica: ReplicaRole | undefined
  /** The master a replica follows. */
  private followedUrl: string | undefined
  private readonly waiters = new LsnWaiters()
  private readonly startedAt: number
  private http: ReturnType<typeof createHttpServer> | undefined
  private readonly snapshots: Snapshots
  /** Role changes run one at a time. */
  private changing: Promise<unknown> = Promise.resolve()
  /** Runs the tasks a master leases to this replica (--jobs). */
  private readonly executor: Executor | undefined

  private constructor(options: NodeOptions, clock: Clock) {
    this.config = { ...defaultConfig, fencing: process.env['TANDEM_UNSAFE_DISABLE_FENCING'] !== '1', ...options }
    this.clock = clock
    this.startedAt = clock.now()
    this.nodeId = loadNodeId(this.config.dataDir)
    this.logger = createLogger(`${this.config.role}-${this.nodeId}`)
    this.dbPath = databasePath(this.config.dataDir)
    if (!this.config.fencing) this.logger.warn('fencing is DISABLED (TANDEM_UNSAFE_DISABLE_FENCING=1): for fault tests only')
    // A node never becomes master by itself: one that was told to follow another master comes
    // back as that replica, even when started as `tandem master`; while a former master started
    // as `tandem replica --master URL` is demoted, as the operator says.
    const state = loadNodeState(this.config.dataDir)
    const role = state?.role === 'replica' ? 'replica' : this.config.role
    const masterUrl = state?.role === 'replica' ? state.masterUrl : this.config.masterUrl
    if (state !== undefined && (state.role !== this.config.role || (role === 'replica' && masterUrl !== this.config.masterUrl))) {
      this.logger.warn({ state, commandLine: { role: this.config.role, masterUrl: this.config.masterUrl } }, `this node was made ${role}${role === 'replica' ? ` of ${masterUrl}` : ''} at epoch ${state.epoch}; starting as that, not as the command line says`)
    }
    if (this.config.jobsModuleUrl !== undefined) {
      this.executor = new Executor({
        moduleUrl: this.config.jobsModuleUrl,
        concurrency: this.config.concurrency,
        dbPath: this.dbPath,
        killGraceMs: this.config.killGraceMs,
        waitForLsn: (lsn, timeoutMs) => this.waitForLsn(lsn, timeoutMs),
        logger: this.logger,
      })
    }
    if (role === 'master') this.startMaster()
    else {
      if (masterUrl === undefined) throw new TandemError('BAD_REQUEST', 'a replica needs --master URL')
      this.startReplica(masterUrl)
      if (state?.role === 'master') {
        saveNodeState(this.config.dataDir, { role: 'replica', masterUrl, epoch: state.epoch, changedAt: new Date(clock.now()).toISOString() })
      }
    }
    this.reads = new NodeReads(this.dbPath, this.schema, this.config, this.logger)
    this.snapshots = new Snapshots(this.dbPath, join(this.config.dataDir, 'snapshots'))
  }

  get role(): Role {
    return this.master !== undefined ? 'master' : 'replica'
  }

  private startMaster(promoteToEpoch?: number): void {
    const master = new MasterRole(this.config, this.dbPath, this.nodeId, this.clock, this.logger, this.schema, promoteToEpoch)
    master.onCommit((entry) => this.waiters.reached(entry.lsn))
    this.master = master
    this.followedUrl = undefined
    this.waiters.reached(master.pipeline.lastLsn)
  }

  private startReplica(masterUrl: string, raiseEpochTo?: number): ReplicaRole {
    const url = masterUrl.replace(/\/+$/, '')
    const replica = new ReplicaRole({ ...this.config, masterUrl: url }, this.dbPath, this.nodeId, () => this.url, this.clock, this.logger, this.schema, {
      // Every connection to the file is closed before it is replaced, the read threads' too.
      before: () => this.reads.closeConnections(),
      after: () => {
        this.reads.openConnections()
        this.executor?.databaseReplaced()
        this.waiters.reached(this.appliedLsn())
      },
    })
    // Durable before following: a replica that knows epoch E never follows an older master again.
    if (raiseEpochTo !== undefined) replica.applier.store.raiseEpoch(raiseEpochTo)
    replica.follower.on('applied', (lsn) => this.waiters.reached(lsn))
    const executor = this.executor
    if (executor !== undefined) {
      replica.follower.on('welcome', () => executor.connected((message) => replica.follower.send(message)))
      replica.follower.on('job', (message) => executor.receive(message))
    }
    this.replica = replica
    this.followedUrl = url
    this.waiters.reached(replica.applier.position.lsn)
    return replica
  }

  static async start(options: NodeOptions, clock: Clock = systemClock): Promise<TandemNode> {
    const node = new TandemNode(options, clock)
    try {
      await node.executor?.start()
    } catch (error) {
      await node.stop()
      throw error
    }
    node.http = createHttpServer(node, { bodyLimitBytes: node.config.bodyLimitBytes, logger: node.logger })
    const address = await node.http.listen({ host: node.config.host, port: node.config.port })
    node.url = address
    // Following starts once the URL is known: the replica tells the master where it serves.
    node.replica?.start()
    return node
  }

  /** The line a node prints when it is ready; tests and `tandem demo` read it. */
  readyLine(): string {
    return `tandem ${this.role} ready ${this.url} id=${this.nodeId} data=${this.config.dataDir}`
  }

  async stop(): Promise<void> {
    this.waiters.clear()
    // Before the HTTP server closes the replication sockets: every committed entry goes out.
    this.master?.sendHeldEntries()
    await this.http?.close()
    await this.replica?.close()
    await this.executor?.close()
    this.master?.close()
    await this.reads.close()
    this.logger.flush()
  }

  // ── NodeApi ──────────────────────────────────────────────────────────────

  masterUrl(): string | undefined {
    return this.role === 'master' ? this.url : this.followedUrl
  }

  /**
   * Makes this replica the master of a new epoch. First every reachable node is fenced at that
   * epoch (the old master stops taking writes; replicas stop following it and drop what they
   * have not applied), so positions stop moving; then, unless `force`, a replica holding more of
   * the log refuses the promotion; then this node becomes the master and tells the others to
   * follow it before it answers. See promotion.ts.
   */
  promote(force: boolean): Promise<{ epoch: number; lsn: number; url: string }> {
    const run = this.changing.then(async () => {
      const replica = this.replica
      if (replica === undefined) throw new TandemError('BAD_REQUEST', `node ${this.nodeId} is already the master`)
      const peers = [...new Set([...replica.follower.peers, ...(this.followedUrl === undefined ? [] : [this.followedUrl])])].filter((u) => u !== this.url)
      const known = await surveyPeers(peers)
      const epoch = Math.max(this.epoch(), ...known.map((p) => p.epoch)) + 1
      // A planned switchover: the old master answers. Fence it first (it takes no more writes but
      // still streams), and catch up with everything it committed, so even asynchronous writes
      // it acknowledged survive. Bounded: a master that does not answer is simply fenced later.
      const oldMaster = this.followedUrl === undefined ? undefined : (await fencePeers([this.followedUrl], epoch))[0]
      if (oldMaster !== undefined && oldMaster.lsn > replica.applier.position.lsn) {
        await this.waiters.wait(replica.applier.position.lsn, oldMaster.lsn, catchUpBeforePromotionMs).catch(() => {
          this.logger.warn({ masterLsn: oldMaster.lsn, lsn: replica.applier.position.lsn }, 'did not catch up with the old master in time; promoting from here')
        })
      }
      this.fence(epoch)
      const fenced = await fencePeers(peers, epoch)
      const position = replica.applier.position
      if (!force) refuseIfBehind(position, fenced)
      await replica.close()
      this.replica = undefined
      this.executor?.stopAll('this replica was promoted to master')
      this.startMaster(epoch)
      saveNodeState(this.config.dataDir, { role: 'master', epoch, changedAt: new Date(this.clock.now()).toISOString() })
      this.logger.warn({ epoch, lsn: position.lsn, peers, fenced: fenced.map((p) => p.url) }, 'promoted to master')
      await tellToFollow(peers, this.url, this.logger)
      return { epoch, lsn: position.lsn, url: this.url }
    })
    this.changing = run.catch(() => undefined)
    return run
  }

  /**
   * A promotion to `epoch` is under way somewhere: a master stops taking writes, a replica stops
   * following an older master. Returns where this node stands, for the promotion to compare.
   */
  fence(epoch: number): { role: Role; epoch: number; position: { epoch: number; lsn: number }; id: string } {
    if (this.master !== undefined && this.config.fencing && epoch > this.master.epoch()) this.master.depose(epoch, 'fenced by a promotion')
    if (this.replica !== undefined) {
      this.replica.applier.store.raiseEpoch(epoch)
      this.replica.follower.fenceBelow(epoch)
    }
    const position = this.master !== undefined ? { epoch: this.master.epoch(), lsn: this.appliedLsn() } : this.replica!.applier.position
    return { role: this.role, epoch: this.epoch(), position, id: this.nodeId }
  }

  /**
   * Follows `masterUrl` from now on. A master steps down: it stops taking writes at once, becomes
   * a replica, and rejoins (its entries past the fork point are discarded, kept in a file).
   */
  follow(masterUrl: string): Promise<{ master: string; epoch: number }> {
    const run = this.changing.then(async () => {
      const target = masterUrl.replace(/\/+$/, '')
      if (target === this.url) throw new TandemError('BAD_REQUEST', 'a node cannot follow itself')
      const theirs = await statusOf(target)
      if (theirs === undefined) throw new TandemError('NO_MASTER', `${target} is not reachable`)
      if (theirs.role !== 'master') throw new TandemError('BAD_REQUEST', `${target} is not a master (it is a ${theirs.role})`)
      const mine = this.epoch()
      if (this.config.fencing && theirs.epoch < mine) {
        throw new TandemError('BAD_REQUEST', `${target} serves epoch ${theirs.epoch}, older than this node's ${mine}: it was deposed`)
      }
      if (this.master !== undefined) {
        this.master.depose(theirs.epoch, `told to follow ${target}`)
        this.master.close()
        this.master = undefined
      } else if (this.replica !== undefined) {
        if (this.followedUrl === target) {
          this.replica.applier.store.raiseEpoch(theirs.epoch)
          return { master: target, epoch: theirs.epoch }
        }
        await this.replica.close()
        this.replica = undefined
      }
      this.startReplica(target, theirs.epoch).start()
      saveNodeState(this.config.dataDir, { role: 'replica', masterUrl: target, epoch: theirs.epoch, changedAt: new Date(this.clock.now()).toISOString() })
      this.logger.warn({ master: target, epoch: theirs.epoch }, 'now following a new master')
      return { master: target, epoch: theirs.epoch }
    })
    this.changing = run.catch(() => undefined)
    return run
  }

  applyLag(since: number): ReturnType<NodeApi['applyLag']> {
    const follower = this.replica?.follower
    if (follower === undefined) throw new TandemError('BAD_REQUEST', 'the master applies no replicated entries: ask a replica for its lag')
    return follower.applyLag.since(since)
  }

  jobs(): JobsApi {
    const master = this.master
    if (master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica; jobs live on the master`, { masterUrl: this.masterUrl() })
    return master.jobs
  }

  write(request: WriteRequest, options?: WriteOptions): Promise<WriteOutcome & { sync?: SyncOutcome }> {
    if (this.master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica`, { masterUrl: this.masterUrl() })
    return this.master.write(request, options)
  }

  async confirmMastership(timeoutMs: number): Promise<void> {
    if (this.master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica`, { masterUrl: this.masterUrl() })
    await this.master.confirmMastership(timeoutMs)
  }

  query(statements: readonly SqlStatement[], transaction: boolean): Promise<StatementResult[]> {
    return this.reads.query(statements, transaction)
  }

  queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): Promise<string> {
    return this.reads.queryJson(statements, transaction, format)
  }

  queryJsonIfCheap(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string | undefined {
    return this.reads.queryJsonIfCheap(statements, transaction, format)
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return this.reads.isWrite(statements)
  }

  /** The highest epoch this node knows: a replica may know one it has no entry of yet. */
  epoch(): number {
    if (this.master !== undefined) return this.master.epoch()
    const applier = this.replica?.applier
    return applier === undefined ? 1 : Math.max(applier.position.epoch, applier.store.epoch())
  }

  appliedLsn(): number {
    return this.master?.pipeline.lastLsn ?? this.replica?.applier.position.lsn ?? 0
  }

  waitForLsn(lsn: number, timeoutMs: number): Promise<void> {
    return this.waiters.wait(this.appliedLsn(), lsn, timeoutMs)
  }

  staleness(): { sinceContactMs: number | undefined; dataAgeMs: number | undefined } {
    const follower = this.replica?.follower
    if (follower === undefined) return { sinceContactMs: 0, dataAgeMs: 0 }
    const now = this.clock.now()
    const sinceContactMs = follower.lastContactAt === 0 ? undefined : now - follower.lastContactAt
    const behind = follower.masterLsn > this.appliedLsn()
    // The data is as old as the time since the master last told us something we have not applied.
    const dataAgeMs = !behind ? 0 : sinceContactMs === undefined ? undefined : Math.max(0, follower.masterTime - follower.appliedTime)
    return { sinceContactMs, dataAgeMs }
  }

  assertReadable(): void {
    this.reads.readsOrThrow()
    if (this.replica?.follower.state === 'diverged') {
      throw new TandemError('REPLICA_DIVERGED', `this replica diverged from its master and is resyncing: ${this.replica.follower.lastProblem ?? ''}`)
    }
  }

  status(): Record<string, unknown> {
    const now = this.clock.now()
    const lsn = this.appliedLsn()
    const position = { epoch: this.master?.epoch() ?? this.replica?.applier.position.epoch ?? 1, lsn }
    const base: Record<string, unknown> = {
      node: { id: this.nodeId, role: this.role, url: this.url, data_dir: this.config.dataDir, start_time: new Date(this.startedAt).toISOString(), uptime_ms: now - this.startedAt },
      role: this.role,
      epoch: position.epoch,
      position,
      store: {
        node_id: this.nodeId,
        path: this.dbPath,
        db_bytes: fileSize(this.dbPath),
        wal_bytes: fileSize(`${this.dbPath}-wal`),
        synchronous: this.config.synchronous,
        leader: { node_id: this.role === 'master' ? this.nodeId : '', addr: this.masterUrl() ?? '' },
        ready: this.isReady().ok,
      },
    }
    if (this.master !== undefined) {
      base['master'] = { url: this.url, lsn, deposed_by_epoch: this.master.deposedEpoch ?? null, write_queue: this.master.pipeline.pending, log_retained_bytes: this.master.retainedLogBytes, log_oldest_lsn: this.master.oldestRetainedLsn() ?? null, ...this.master.guarantees() }
      base['jobs'] = this.master.scheduler.stats()
      base['replicas'] = this.master.replicaInfos(now).map((r) => ({ id: r.id, url: r.url, applied_lsn: r.appliedLsn, lag_entries: r.lagEntries, lag_ms: r.lagMs }))
    }
    if (this.replica !== undefined) {
      const f = this.replica.follower
      const { sinceContactMs } = this.staleness()
      base['replication'] = {
        state: f.state,
        master_url: this.masterUrl(),
        master_lsn: f.masterLsn,
        applied_lsn: lsn,
        lag_entries: Math.max(0, f.masterLsn - lsn),
        lag_ms: f.masterLsn > lsn ? Math.max(0, f.masterTime - f.appliedTime) : 0,
        last_contact_ms_ago: sinceContactMs ?? null,
        last_problem: f.lastProblem ?? null,
        snapshots_installed: f.snapshotsInstalled,
        durable_lsn: f.durableLsn,
        wal_syncs: this.replica.walSyncs,
        peers: f.peers,
      }
      if (this.executor !== undefined) base['jobs'] = this.executor.stats()
    }
    base['reads'] = this.reads.stats()
    // V8 grows its heap lazily under load: RSS says what the process holds, heap_used what is live.
    const memory = process.memoryUsage()
    base['memory'] = { rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed, heap_total_bytes: memory.heapTotal, external_bytes: memory.external }
    return base
  }

  nodes(): NodeInfo[] {
    const self: NodeInfo = { id: this.nodeId, url: this.url, role: this.role, reachable: true, appliedLsn: this.appliedLsn(), lagEntries: 0, lagMs: 0 }
    if (this.master?.deposedEpoch !== undefined) self.deposed = true
    if (this.master !== undefined) return [self, ...this.master.replicaInfos(this.clock.now())]
    const f = this.replica!.follower
    const masterInfo: NodeInfo = {
      id: 'master',
      url: this.masterUrl() ?? '',
      role: 'master',
      reachable: f.state === 'streaming',
      appliedLsn: f.masterLsn,
      lagEntries: 0,
      lagMs: 0,
    }
    return [masterInfo, { ...self, lagEntries: Math.max(0, f.masterLsn - self.appliedLsn) }]
  }

  checksum() {
    return this.reads.readsOrThrow().checksum()
  }

  snapshot(): Promise<Snapshot> {
    this.assertReadable()
    return this.snapshots.take()
  }

  acceptReplication(socket: WebSocket, request: IncomingMessage): void {
    if (this.master === undefined) {
      socket.send(JSON.stringify({ type: 'refuse', code: 'NOT_MASTER', message: `node ${this.nodeId} is a replica; its master is ${this.masterUrl()}` }))
      socket.close(1008, 'not master')
      return
    }
    this.master.accept(socket, request)
  }

  isReady(): { ok: boolean; lines: string[] } {
    const lines = ['[+]node ok']
    if (this.master !== undefined) {
      if (this.master.deposedEpoch !== undefined) return { ok: false, lines: [...lines, `[+]leader deposed by epoch ${this.master.deposedEpoch}`] }
      return { ok: true, lines: [...lines, '[+]leader ok', '[+]store ok'] }
    }
    const state = this.replica!.follower.state
    if (state !== 'streaming') {
      lines.push(state === 'snapshotting' ? '[+]leader ok' : '[+]leader does not exist')
      if (state === 'snapshotting') lines.push('[+]store not ready')
      return { ok: false, lines }
    }
    return { ok: this.reads.isOpen, lines: [...lines, '[+]leader ok', this.reads.isOpen ? '[+]store ok' : '[+]store not ready'] }
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}
