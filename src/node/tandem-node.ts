/**
 * One `tandem` process: the composition root. It opens the database, builds the master's or
 * the replica's parts (through node-roles.ts, which also changes them), serves the HTTP API, and
 * prints one line when ready. Start order: storage, role, HTTP (so the URL is known), then
 * following; stop order is the reverse.
 */
import { tandemVersion } from '../shared/version.ts'
import type { FenceReply } from './promotion.ts'
import type { VoteCandidate } from '../replication-log/log-store.ts'
import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { systemClock, type Clock } from '../shared/clock.ts'
import { TandemError } from '../shared/errors.ts'
import { createLogger, type Logger } from '../shared/logger.ts'
import type { LoadRequest, WriteOutcome, WriteRequest } from '../master/write-pipeline.ts'
import { dumpDatabase, importDatabase } from './database-io.ts'
import type { SyncOutcome, WriteOptions } from '../master/write-options.ts'
import { Readable } from 'node:stream'
import { SchemaGeneration, StatementLimits, databasePath, engine as sqliteEngine, type ReadStops, type SqlStatement, type StatementResult } from '../storage/index.ts'
import { createHttpServer } from '../http-api/server.ts'
import type { JobsApi, NodeApi, NodeInfo, Role, Snapshot } from '../http-api/node-api.ts'
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import { Executor } from '../jobs/index.ts'
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import { defaultConfig, defaultPrefetch, type NodeConfig } from './config.ts'
import { DataLock } from './data-lock.ts'
import { NodeReads } from './node-reads.ts'
import { LsnWaiters } from './lsn-waiters.ts'
import { NodeRoles } from './node-roles.ts'
import { loadNodeId } from './node-identity.ts'
import { Snapshots } from './snapshots.ts'
import { loadNodeSecurity, type NodeSecurity } from './node-security.ts'
import { ClusterId } from '../security/index.ts'
import type { Coordinator } from '../coordinator/index.ts'
import { coordinate } from './coordination.ts'
import { HttpWorkers } from './http-workers.ts'
import type { PublishedState, SharedNodeState } from './shared-node-state.ts'

export type NodeOptions = Partial<NodeConfig> & Pick<NodeConfig, 'role' | 'dataDir' | 'port'>

/** How long a stopping node waits for its HTTP connections before it closes them (SIGTERM ends a node within 5 s). */
const httpCloseGraceMs = 2000

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
  /** The master's or the replica's parts, and changes from one to the other (node-roles.ts). */
  private readonly roles: NodeRoles
  /** Each new LSN is published for the HTTP workers at once: a min_lsn read there sees it. */
  private readonly waiters = new LsnWaiters((lsn) => this.httpWorkers?.reached(lsn))
  /** What the HTTP workers read of this node (http-workers.ts); undefined: it answers HTTP alone. */
  private readonly workerState: SharedNodeState | undefined
  private httpWorkers: HttpWorkers | undefined
  private readonly startedAt: number
  private http: ReturnType<typeof createHttpServer> | undefined
  private readonly snapshots: Snapshots
  /** Runs the tasks a master leases to this replica (--jobs). */
  private readonly executor: Executor | undefined
  /** Users, the cluster secret, TLS, and the gate every request passes. */
  private readonly security: NodeSecurity
  private readonly cluster: ClusterId
  /** Automatic failover on etcd (--coordinator). */
  private readonly coordinator: Coordinator | undefined

  /** Held from start to stop. */
  private readonly dataLock: DataLock

  private constructor(options: NodeOptions, clock: Clock) {
    const frameBytesMax = Number(process.env['TANDEM_TEST_FRAME_BYTES_MAX'] ?? NaN)
    this.config = {
      ...defaultConfig,
      fencing: process.env['TANDEM_UNSAFE_DISABLE_FENCING'] !== '1',
      ...(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0 ? { frameBytesMax } : {}),
      ...options,
    }
    // First: a node that may not start this way stops before it touches its data directory.
    this.security = loadNodeSecurity(this.config)
    // Then one node per data directory (data-lock.ts), before anything in it is read or written.
    this.dataLock = DataLock.take(this.config.dataDir)
    this.clock = clock
    this.startedAt = clock.now()
    this.nodeId = loadNodeId(this.config.dataDir)
    this.cluster = new ClusterId(this.config.dataDir)
    this.logger = createLogger(`${this.config.role}-${this.nodeId}`)
    this.dbPath = databasePath(this.config.dataDir)
    this.workerState = HttpWorkers.stateFor(this.config, this.security.tls !== undefined, this.schema, this.logger)
    if (!this.config.fencing) this.logger.warn('fencing is DISABLED (TANDEM_UNSAFE_DISABLE_FENCING=1): for fault tests only')
    if (StatementLimits.unavailableReason !== undefined && this.config.queryTimeoutMs > 0) this.logger.warn(StatementLimits.unavailableReason)
    // Before any connection is opened: every one watched from now on, on any thread, takes it.
    StatementLimits.forThisThread()?.setResultBytesMax(this.config.resultBytesMax)
    if (this.config.jobsModuleUrl !== undefined) {
      this.executor = new Executor({
        moduleUrl: this.config.jobsModuleUrl,
        concurrency: this.config.concurrency,
        prefetch: this.config.prefetch ?? defaultPrefetch,
        threads: this.config.jobThreads ?? availableParallelism(),
        dbPath: this.dbPath,
        killGraceMs: this.config.killGraceMs,
        queryTimeoutMs: this.config.queryTimeoutMs,
        waitForLsn: (lsn, timeoutMs) => this.waitForLsn(lsn, timeoutMs),
        logger: this.logger,
      })
    }
    this.roles = new NodeRoles({
      config: this.config,
      dbPath: this.dbPath,
      nodeId: this.nodeId,
      url: () => this.url,
      clock,
      logger: this.logger,
      schema: this.schema,
      waiters: this.waiters,
      executor: this.executor,
      peers: this.security.peers,
      cluster: this.cluster,
      ...(this.config.coordinatorUrls === undefined
        ? {}
        : {
            leaseProblem: () => (this.coordinator === undefined ? 'this node is starting' : this.coordinator.leaseProblem()),
            beforeSyncAck: (lsn: number) => this.coordinator?.publishSync(lsn) ?? Promise.resolve(),
          }),
      onSwap: {
        // Every connection to the file is closed before it is replaced, the read threads' too.
        before: () => {
          this.workerState?.closeFile()
          this.reads.closeConnections()
        },
        after: () => {
          this.reads.openConnections()
          this.workerState?.openFile()
          this.executor?.databaseReplaced()
          this.waiters.reached(this.appliedLsn())
        },
      },
    })
    if (this.config.coordinatorUrls !== undefined) {
      this.coordinator = coordinate(this.config, this.config.coordinatorUrls, this.roles, { id: this.nodeId, url: () => this.url }, this.logger)
    }
    this.reads = new NodeReads(this.dbPath, this.schema, this.config, this.logger)
    this.snapshots = new Snapshots(this.dbPath, join(this.config.dataDir, 'snapshots'))
  }

  get role(): Role {
    return this.roles.role
  }


  static async start(options: NodeOptions, clock: Clock = systemClock): Promise<TandemNode> {
    let node: TandemNode
    try {
      node = new TandemNode(options, clock)
    } catch (error) {
      // A start that failed after taking the directory's lock lets it go.
      DataLock.releaseHeld(options.dataDir)
      throw error
    }
    try {
      await node.executor?.start()
    } catch (error) {
      await node.stop()
      throw error
    }
    const { gate, tls, peers } = node.security
    const advertise = node.config.advertiseUrl
    if (advertise !== undefined && (tls !== undefined) !== advertise.startsWith('https:')) {
      await node.stop()
      throw new TandemError('BAD_REQUEST', `--advertise-url ${advertise} must be ${tls !== undefined ? 'https' : 'http'}: this node serves ${tls !== undefined ? 'HTTPS (--tls-cert)' : 'plain HTTP'}`)
    }
    node.http = createHttpServer(node, {
      bodyLimitBytes: node.config.bodyLimitBytes,
      load: { dir: node.config.dataDir, limitBytes: node.config.loadLimitBytes },
      headersTimeoutMs: node.config.headersTimeoutMs,
      requestTimeoutMs: node.config.requestTimeoutMs,
      connectionsMax: node.config.connectionsMax,
      logger: node.logger, gate, tls, peers })
    const address = await node.http.listen({ host: node.config.host, port: node.config.port })
    node.url = advertisedUrl(tls === undefined ? address : address.replace(/^http:/, 'https:'), advertise)
    if (node.workerState !== undefined) node.httpWorkers = await HttpWorkers.start(node.http.server, node.workerState, node.config, node.logger, () => node.publishedState())
    // Following starts once the URL is known: the replica tells the master where it serves.
    node.roles.replica?.start()
    node.coordinator?.start()
    if (node.config.importFile !== undefined) {
      try {
        await node.importDatabase(node.config.importFile)
      } catch (error) {
        await node.stop()
        throw error
      }
    }
    return node
  }

  /** --import: see database-io.ts. */
  private async importDatabase(file: string): Promise<void> {
    if (this.roles.master === undefined) throw new TandemError('BAD_REQUEST', '--import is for a master: this node runs as a replica')
    await importDatabase(this.roles.master, file, this.logger)
  }


  /** The line a node prints when it is ready; tests and `tandem demo` read it. */
  readyLine(): string {
    return `tandem ${this.role} ready ${this.url} id=${this.nodeId} data=${this.config.dataDir}`
  }

  /**
   * Closes the HTTP server: it waits for the requests under way to be answered, then for their
   * connections, but a connection that never sends a request (a client that opened a socket and
   * went quiet) would hold it for ever: past httpCloseGraceMs every connection is closed.
   */
  private async closeHttp(): Promise<void> {
    const http = this.http
    if (http === undefined) return
    const force = setTimeout(() => http.server.closeAllConnections(), httpCloseGraceMs)
    try {
      await http.close()
    } finally {
      clearTimeout(force)
    }
  }

  async stop(): Promise<void> {
    this.waiters.clear()
    // A long read must not hold the HTTP server's close: its client gets SHUTTING_DOWN now.
    this.reads.stopReads()
    // No new writes, and a long one under way stops: the HTTP server waits for its answer.
    this.roles.master?.pipeline.close()
    // Before the HTTP server closes the replication sockets: every committed entry goes out.
    this.roles.master?.sendHeldEntries()
    // A master gives its key up: a replica takes over now rather than at the lease's end.
    await this.coordinator?.stop()
    // Their reads end with them: a worker holds nothing that needs an orderly end.
    await this.httpWorkers?.close()
    await this.closeHttp()
    await this.roles.replica?.close()
    await this.executor?.close()
    await this.roles.master?.close()
    await this.reads.close()
    await this.security.peers.close()
    this.dataLock.release()
    this.logger.flush()
  }

  // ── NodeApi ──────────────────────────────────────────────────────────────

  masterUrl(): string | undefined {
    return this.roles.masterUrl()
  }

  async promote(force: boolean): Promise<{ epoch: number; lsn: number; url: string }> {
    if (this.coordinator === undefined) return this.roles.promote(force)
    // With etcd, the master is the node that holds the master key: nothing may force past it.
    if (force) throw new TandemError('PROMOTION_REFUSED', 'this node runs with --coordinator: the master is the node holding the master key in etcd, and a forced promotion would make a second one; stop the master instead, and a replica takes over within --coordinator-ttl')
    const { epoch } = await this.coordinator.promoteNow()
    return { epoch, lsn: this.appliedLsn(), url: this.url }
  }

  fence(epoch: number, candidate: VoteCandidate, candidatePosition: { epoch: number; lsn: number }): FenceReply {
    return this.roles.fence(epoch, candidate, candidatePosition)
  }

  follow(masterUrl: string, caller: { byNode: boolean }): Promise<{ master: string; epoch: number }> {
    return this.roles.follow(masterUrl, caller)
  }

  applyLag(since: number): ReturnType<NodeApi['applyLag']> {
    const follower = this.roles.replica?.follower
    if (follower === undefined) throw new TandemError('BAD_REQUEST', 'the master applies no replicated entries: ask a replica for its lag')
    return follower.applyLag.since(since)
  }

  jobs(): JobsApi {
    const master = this.roles.master
    if (master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica; jobs live on the master`, { masterUrl: this.masterUrl() })
    return master.jobs
  }

  write(request: WriteRequest | LoadRequest, options?: WriteOptions): Promise<WriteOutcome & { sync?: SyncOutcome }> {
    if (this.roles.master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica`, { masterUrl: this.masterUrl() })
    return this.roles.master.write(request, options)
  }

  async confirmMastership(timeoutMs: number): Promise<void> {
    if (this.roles.master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica`, { masterUrl: this.masterUrl() })
    await this.roles.master.confirmMastership(timeoutMs)
  }

  query(statements: readonly SqlStatement[], transaction: boolean, stops?: ReadStops): Promise<StatementResult[]> {
    return this.reads.query(statements, transaction, stops)
  }

  queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions, stops?: ReadStops): Promise<string> {
    return this.reads.queryJson(statements, transaction, format, stops)
  }

  queryJsonIfCheap(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string | undefined {
    return this.reads.queryJsonIfCheap(statements, transaction, format)
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return this.reads.isWrite(statements)
  }

  epoch(): number {
    return this.roles.epoch()
  }

  appliedLsn(): number {
    return this.roles.appliedLsn()
  }

  waitForLsn(lsn: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.waiters.wait(this.appliedLsn(), lsn, timeoutMs, signal)
  }

  staleness(): { sinceContactMs: number | undefined; dataAgeMs: number | undefined } {
    const follower = this.roles.replica?.follower
    if (follower === undefined) return { sinceContactMs: 0, dataAgeMs: 0 }
    const now = this.clock.now()
    const sinceContactMs = follower.lastContactAt === 0 ? undefined : now - follower.lastContactAt
    const behind = follower.masterLsn > this.appliedLsn()
    // The data is as old as the time since the master last told us something we have not applied.
    const dataAgeMs = !behind ? 0 : sinceContactMs === undefined ? undefined : Math.max(0, follower.masterTime - follower.appliedTime)
    return { sinceContactMs, dataAgeMs }
  }

  /** What the HTTP workers may rely on now (shared-node-state.ts). */
  private publishedState(): PublishedState {
    let readable = true
    try {
      this.assertReadable()
    } catch {
      readable = false
    }
    return { role: this.role, epoch: this.epoch(), lsn: this.appliedLsn(), readable, sinceContactMs: this.staleness().sinceContactMs }
  }

  assertReadable(): void {
    this.reads.readsOrThrow()
    if (this.roles.replica?.follower.state === 'diverged') {
      throw new TandemError('REPLICA_DIVERGED', `this replica diverged from its master and is resyncing: ${this.roles.replica.follower.lastProblem ?? ''}`)
    }
  }

  status(): Record<string, unknown> {
    const now = this.clock.now()
    const lsn = this.appliedLsn()
    const { master, replica } = this.roles
    const position = { epoch: master?.epoch() ?? replica?.applier.position.epoch ?? 1, lsn }
    const base: Record<string, unknown> = {
      node: { id: this.nodeId, cluster_id: this.cluster.value ?? null, role: this.role, url: this.url, version: tandemVersion, data_dir: this.config.dataDir, start_time: new Date(this.startedAt).toISOString(), uptime_ms: now - this.startedAt },
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
    if (master !== undefined) {
      base['master'] = { url: this.url, lsn, epoch_start_lsn: master.epochStartLsn() ?? null, deposed_by_epoch: master.deposedEpoch ?? null, last_problem: master.writeFailure ?? master.replication.logProblem ?? null, write_queue: master.pipeline.pending, long_writes: { running: master.pipeline.isWritingLong, total: master.pipeline.longWrites }, log_retained_bytes: master.retainedLogBytes, log_oldest_lsn: master.oldestRetainedLsn() ?? null, ...master.guarantees() }
      base['jobs'] = { ...master.scheduler.stats(), ...master.schedules.stats() }
      base['replicas'] = master.replicaInfos(now).map((r) => ({ id: r.id, url: r.url, applied_lsn: r.appliedLsn, lag_entries: r.lagEntries, lag_ms: r.lagMs }))
    }
    if (replica !== undefined) {
      const f = replica.follower
      const { sinceContactMs } = this.staleness()
      base['replication'] = {
        // A replica that keeps failing to apply (a full disk) may still hold its connection.
        state: f.applyFailure === undefined ? f.state : 'failing',
        master_url: this.masterUrl(),
        master_lsn: f.masterLsn,
        applied_lsn: lsn,
        lag_entries: Math.max(0, f.masterLsn - lsn),
        lag_ms: f.masterLsn > lsn ? Math.max(0, f.masterTime - f.appliedTime) : 0,
        last_contact_ms_ago: sinceContactMs ?? null,
        last_problem: f.lastProblem ?? null,
        apply_failing: f.applyFailure !== undefined,
        snapshots_installed: f.snapshotsInstalled,
        durable_lsn: f.durableLsn,
        wal_syncs: replica.walSyncs,
        peers: f.peers,
      }
      if (this.executor !== undefined) base['jobs'] = this.executor.stats()
    }
    if (this.coordinator !== undefined) base['coordinator'] = this.coordinator.status()
    base['security'] = {
      auth: this.security.users.isEnabled,
      cluster_secret: this.security.secret !== undefined,
      tls: this.security.tls !== undefined,
      mutual_tls: this.security.tls?.clientAuth === true,
    }
    base['reads'] = { ...this.reads.stats(), min_lsn_waits: this.waiters.count }
    base['http_workers'] = this.httpWorkers?.stats() ?? { processes: 1, workers: [] }
    // Whether statements can be stopped at all (the extension is built), and after how long.
    base['sqlite'] = { engine: sqliteEngine.name, version: sqliteEngine.version, rowid_tables: sqliteEngine.rowidTables }
    base['statements'] = { time_limits: StatementLimits.unavailableReason === undefined, query_timeout_ms: this.config.queryTimeoutMs, write_budget_ms: this.config.writeBudgetMs, result_bytes_max: this.config.resultBytesMax }
    // V8 grows its heap lazily under load: RSS says what the process holds, heap_used what is live.
    const memory = process.memoryUsage()
    base['memory'] = { rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed, heap_total_bytes: memory.heapTotal, external_bytes: memory.external }
    return base
  }

  nodes(): NodeInfo[] {
    const self: NodeInfo = { id: this.nodeId, url: this.url, role: this.role, reachable: true, appliedLsn: this.appliedLsn(), lagEntries: 0, lagMs: 0, version: tandemVersion }
    if (this.roles.master?.deposedEpoch !== undefined) self.deposed = true
    if (this.roles.master !== undefined) return [self, ...this.roles.master.replicaInfos(this.clock.now())]
    const f = this.roles.replica!.follower
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

  /** The database as SQL text (GET /db/backup?fmt=sql). */
  dump(): Readable {
    this.assertReadable()
    return dumpDatabase(this.dbPath)
  }

  snapshot(): Promise<Snapshot> {
    this.assertReadable()
    return this.snapshots.take()
  }

  clusterId(): string | undefined {
    return this.cluster.value
  }

  checkCluster(id: string | undefined, from: string): void {
    this.cluster.check(id, from)
  }

  acceptReplication(socket: WebSocket, request: IncomingMessage, caller: { isNode: boolean }): void {
    if (this.roles.master === undefined) {
      socket.send(JSON.stringify({ type: 'refuse', code: 'NOT_MASTER', message: `node ${this.nodeId} is a replica; its master is ${this.masterUrl()}` }))
      socket.close(1008, 'not master')
      return
    }
    this.roles.master.accept(socket, request, caller)
  }

  isReady(): { ok: boolean; lines: string[] } {
    const lines = ['[+]node ok']
    const master = this.roles.master
    if (master !== undefined) {
      if (master.deposedEpoch !== undefined) return { ok: false, lines: [...lines, `[+]leader deposed by epoch ${master.deposedEpoch}`] }
      const leaseProblem = this.coordinator?.leaseProblem()
      if (leaseProblem !== undefined) return { ok: false, lines: [...lines, `[-]leader lease: ${leaseProblem}`] }
      const failure = master.writeFailure
      return { ok: failure === undefined, lines: [...lines, '[+]leader ok', failure === undefined ? '[+]store ok' : `[-]store ${failure}`] }
    }
    const { state, applyFailure } = this.roles.replica!.follower
    if (applyFailure !== undefined) return { ok: false, lines: [...lines, '[+]leader ok', `[-]store ${applyFailure}`] }
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

/** The URL the node gives others: --advertise-url (with the listening port when it names none), else `listening`. */
function advertisedUrl(listening: string, advertise: string | undefined): string {
  if (advertise === undefined) return listening
  const url = new URL(advertise)
  // URL drops a port that is its scheme's default (http://h:80): that one was given, keep it.
  const namesPort = /^https?:\/\/(\[[^\]]+\]|[^/:]+):\d+$/.test(advertise)
  if (!namesPort) url.port = new URL(listening).port
  return url.origin
}
