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
import { databasePath, type SqlStatement, type StatementResult } from '../storage/index.ts'
import { createHttpServer } from '../http-api/server.ts'
import type { NodeApi, NodeInfo, Role, Snapshot } from '../http-api/node-api.ts'
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import { defaultConfig, type NodeConfig } from './config.ts'
import { LocalReads } from './local-reads.ts'
import { LsnWaiters } from './lsn-waiters.ts'
import { MasterRole } from './master-role.ts'
import { ReplicaRole } from './replica-role.ts'
import { loadNodeId } from './node-identity.ts'
import { Snapshots } from './snapshots.ts'

export type NodeOptions = Partial<NodeConfig> & Pick<NodeConfig, 'role' | 'dataDir' | 'port'>

export class TandemNode implements NodeApi {
  readonly role: Role
  readonly nodeId: string
  url = ''
  readonly config: NodeConfig
  private readonly clock: Clock
  private readonly logger: Logger
  private readonly dbPath: string
  private reads: LocalReads | undefined
  private readonly master: MasterRole | undefined
  private readonly replica: ReplicaRole | undefined
  private readonly waiters = new LsnWaiters()
  private readonly startedAt: number
  private http: ReturnType<typeof createHttpServer> | undefined
  private readonly snapshots: Snapshots

  private constructor(options: NodeOptions, clock: Clock) {
    this.config = { ...defaultConfig, ...options }
    this.role = this.config.role
    this.clock = clock
    this.startedAt = clock.now()
    this.nodeId = loadNodeId(this.config.dataDir)
    this.logger = createLogger(`${this.role}-${this.nodeId}`)
    this.dbPath = databasePath(this.config.dataDir)
    if (this.role === 'master') {
      this.master = new MasterRole(this.config, this.dbPath, this.nodeId, clock, this.logger)
      this.master.onCommit((entry) => this.waiters.reached(entry.lsn))
      this.waiters.reached(this.master.pipeline.lastLsn)
    } else {
      if (this.config.masterUrl === undefined) throw new TandemError('BAD_REQUEST', 'a replica needs --master URL')
      this.replica = new ReplicaRole(
        { ...this.config, masterUrl: this.config.masterUrl.replace(/\/+$/, '') },
        this.dbPath,
        this.nodeId,
        () => this.url,
        clock,
        this.logger,
        {
          before: () => {
            this.reads?.close()
            this.reads = undefined
          },
          after: () => {
            this.reads = new LocalReads(this.dbPath)
            this.waiters.reached(this.appliedLsn())
          },
        },
      )
      this.replica.follower.on('applied', (lsn) => this.waiters.reached(lsn))
      this.waiters.reached(this.replica.applier.position.lsn)
    }
    this.reads = new LocalReads(this.dbPath)
    this.snapshots = new Snapshots(this.dbPath, join(this.config.dataDir, 'snapshots'))
  }

  static async start(options: NodeOptions, clock: Clock = systemClock): Promise<TandemNode> {
    const node = new TandemNode(options, clock)
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
    await this.http?.close()
    await this.replica?.close()
    this.master?.close()
    this.reads?.close()
    this.logger.flush()
  }

  // ── NodeApi ──────────────────────────────────────────────────────────────

  masterUrl(): string | undefined {
    return this.role === 'master' ? this.url : this.config.masterUrl?.replace(/\/+$/, '')
  }

  write(request: WriteRequest, options?: WriteOptions): Promise<WriteOutcome & { sync?: SyncOutcome }> {
    if (this.master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica`, { masterUrl: this.masterUrl() })
    return this.master.write(request, options)
  }

  async confirmMastership(timeoutMs: number): Promise<void> {
    if (this.master === undefined) throw new TandemError('NOT_MASTER', `node ${this.nodeId} is a replica`, { masterUrl: this.masterUrl() })
    await this.master.confirmMastership(timeoutMs)
  }

  private readsOrThrow(): LocalReads {
    if (this.reads === undefined) throw new TandemError('NOT_READY', 'this replica is installing a snapshot; retry shortly')
    return this.reads
  }

  query(statements: readonly SqlStatement[], transaction: boolean): StatementResult[] {
    return this.readsOrThrow().query(statements, transaction)
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return this.readsOrThrow().isWrite(statements)
  }

  epoch(): number {
    return this.master?.epoch() ?? this.replica?.applier.position.epoch ?? 1
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
    this.readsOrThrow()
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
      base['master'] = { url: this.url, lsn, write_queue: this.master.pipeline.pending, log_retained_bytes: this.master.retainedLogBytes, log_oldest_lsn: this.master.oldestRetainedLsn() ?? null, ...this.master.guarantees() }
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
      }
    }
    return base
  }

  nodes(): NodeInfo[] {
    const self: NodeInfo = { id: this.nodeId, url: this.url, role: this.role, reachable: true, appliedLsn: this.appliedLsn(), lagEntries: 0, lagMs: 0 }
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
    return this.readsOrThrow().checksum()
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
    if (this.role === 'master') return { ok: true, lines: [...lines, '[+]leader ok', '[+]store ok'] }
    const state = this.replica!.follower.state
    if (state !== 'streaming') {
      lines.push(state === 'snapshotting' ? '[+]leader ok' : '[+]leader does not exist')
      if (state === 'snapshotting') lines.push('[+]store not ready')
      return { ok: false, lines }
    }
    return { ok: this.reads !== undefined, lines: [...lines, '[+]leader ok', this.reads !== undefined ? '[+]store ok' : '[+]store not ready'] }
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}
