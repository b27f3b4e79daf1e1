/**
 * The replica's parts: the apply connection and applier, the follower that streams from the
 * master, and snapshot installation (which swaps the database file under the node).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Clock } from '../shared/clock.ts'
import type { Logger } from '../shared/logger.ts'
import { Follower } from '../replica/follower.ts'
import { Applier } from '../replica/applier.ts'
import { downloadSnapshot } from '../replica/snapshot-download.ts'
import { Retention } from '../replication-log/retention.ts'
import { decodeOps, type LogEntry } from '../replication-log/log-entry.ts'
import { WalFlusher, openApplier, replaceDatabase, type Connection, type SchemaGeneration, type Synchronous } from '../storage/index.ts'
import type { NodeConfig } from './config.ts'
import { ensureJobSchema } from '../jobs/index.ts'
import type { ClusterId, PeerCredentials } from '../security/index.ts'

export class ReplicaRole {
  readonly follower: Follower
  private connection: Connection
  private applierInstance: Applier
  /**
   * With --synchronous full, entries are applied at NORMAL (a commit does not sync) and this
   * syncs the WAL off the event loop before they are acknowledged: acknowledgements mean
   * durable, as before, but the replica's event loop never waits on the disk and one sync covers
   * every batch applied while the previous one ran.
   */
  private flusher: WalFlusher | undefined
  private readonly applyLevel: Synchronous
  private readonly retention = new Retention()
  private readonly retentionTimer: NodeJS.Timeout
  private readonly config: NodeConfig & { masterUrl: string }
  private readonly dbPath: string
  private readonly logger: Logger
  /** Called around a snapshot install, so the node can close and reopen its read connection. */
  private readonly onSwap: { before: () => void; after: () => void }
  /** The node's schema generation, moved by the applier (see SchemaGeneration). */
  private readonly schema: SchemaGeneration
  private readonly peers: PeerCredentials
  private readonly cluster: ClusterId

  constructor(
    config: NodeConfig & { masterUrl: string },
    dbPath: string,
    nodeId: string,
    url: () => string,
    clock: Clock,
    logger: Logger,
    schema: SchemaGeneration,
    onSwap: { before: () => void; after: () => void },
    peers: PeerCredentials,
    cluster: ClusterId,
  ) {
    this.config = config
    this.peers = peers
    this.cluster = cluster
    this.dbPath = dbPath
    this.logger = logger
    this.schema = schema
    this.onSwap = onSwap
    this.applyLevel = config.synchronous === 'full' ? 'normal' : config.synchronous
    this.flusher = config.synchronous === 'full' ? new WalFlusher(dbPath) : undefined
    this.connection = openApplier(dbPath, this.applyLevel)
    ensureJobSchema(this.connection)
    this.applierInstance = new Applier(this.connection, this.schema)
    this.rebuildRetention()
    this.follower = new Follower({
      nodeId,
      url,
      masterUrl: config.masterUrl,
      clock,
      logger,
      applier: () => this.applierInstance,
      bootstrap: (reason, forkLsn) => this.installSnapshot(reason, forkLsn),
      fencing: config.fencing,
      peers,
      cluster,
      reconnectBaseMs: 50,
      reconnectCapMs: 2000,
      silenceMsMax: config.silenceMsMax,
      applyEntriesMax: 5000,
      applyDelayMs: config.applyDelayMs,
      flushDelayMs: config.flushDelayMs,
      ...(config.frameBytesMax === undefined ? {} : { frameBytesMax: config.frameBytesMax }),
      ...(this.flusher === undefined ? {} : { flush: () => this.flusher?.flush() ?? Promise.resolve() }),
    })
    this.follower.on('applied', () => this.noteApplied())
    this.retentionTimer = setInterval(() => this.truncateLog(), 5000)
    this.retentionTimer.unref()
  }

  /** WAL syncs since start (0 when applying syncs by itself). */
  get walSyncs(): number {
    return this.flusher?.syncs ?? 0
  }

  get applier(): Applier {
    return this.applierInstance
  }

  /** Starts following; a local log that fails its checksums is replaced from a snapshot first. */
  /** `resync`: why this node's data must not be trusted (a master whose file was damaged): bootstrap from a snapshot first. */
  start(resync?: string): void {
    const problem = this.applierInstance.store.verify()
    if (problem !== undefined) this.logger.error({ problem }, 'the local log is corrupted: it will not be used; resyncing from a snapshot')
    this.follower.start(problem === undefined ? resync : `the local log is corrupted: ${problem}`)
  }

  private retainedThrough = 0

  private noteApplied(): void {
    const position = this.applierInstance.position.lsn
    if (position <= this.retainedThrough) return
    // Sizes are tracked approximately on a replica: one unit per entry keeps retention by
    // count close to the master's by bytes without reading each entry back.
    for (let lsn = this.retainedThrough + 1; lsn <= position; lsn++) this.retention.add(lsn, 1)
    this.retainedThrough = position
  }

  private rebuildRetention(): void {
    this.retention.reset()
    this.retainedThrough = 0
    for (const { lsn } of this.applierInstance.store.sizes()) {
      this.retention.add(lsn, 1)
      this.retainedThrough = lsn
    }
  }

  private truncateLog(): void {
    const entriesKept = Math.max(1, Math.floor(this.config.logRetainBytes / 1024))
    const point = this.retention.truncationPoint({ retainBytes: entriesKept, retainBytesMax: entriesKept }, undefined)
    if (point === undefined) return
    this.applierInstance.store.truncateBefore(point)
    this.retention.dropBefore(point)
  }

  private async installSnapshot(reason: string, forkLsn: number | undefined): Promise<void> {
    if (forkLsn !== undefined) this.keepDiscarded(forkLsn, reason)
    const download = join(this.config.dataDir, 'snapshot.download')
    const { lsn, bytes } = await downloadSnapshot(this.config.masterUrl, download, this.peers, this.cluster)
    const replaced = this.applierInstance.position
    this.onSwap.before()
    try {
      this.connection.exec('PRAGMA wal_checkpoint(TRUNCATE)')
      this.connection.close()
      this.flusher?.close()
      if (replaced.lsn > 0) this.keepAside(replaced, reason)
      replaceDatabase(this.dbPath, download)
    } finally {
      if (this.flusher !== undefined) this.flusher = new WalFlusher(this.dbPath)
      this.connection = openApplier(this.dbPath, this.applyLevel)
      ensureJobSchema(this.connection)
      this.applierInstance = new Applier(this.connection, this.schema)
      this.rebuildRetention()
      this.onSwap.after()
    }
    this.logger.info({ lsn, bytes }, 'installed a snapshot of the master')
  }

  /**
   * Moves the database a snapshot is about to replace to `<data>/replaced/` (complete: the WAL
   * was checkpointed into it), so a resync never destroys the only copy of anything. Only the
   * newest is kept: each is as large as the database.
   */
  private keepAside(position: { epoch: number; lsn: number }, reason: string): void {
    const dir = join(this.config.dataDir, 'replaced')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `tandem-epoch${position.epoch}-lsn${position.lsn}-${Date.now()}.db`)
    if (existsSync(this.dbPath)) renameSync(this.dbPath, file)
    for (const older of readdirSync(dir)) if (join(dir, older) !== file) rmSync(join(dir, older), { force: true })
    this.logger.warn({ file, position, reason }, `the database at epoch ${position.epoch}, LSN ${position.lsn} is replaced by a snapshot; the old file is kept in ${file}`)
  }

  /**
   * Writes the local entries after `forkLsn` to `<data>/discarded/` before a snapshot replaces
   * them: they were committed by a master that was deposed and are not in the new master's
   * history. Under synchronous replication none of them was acknowledged; the operator decides
   * (like pg_rewind's leftovers).
   */
  private keepDiscarded(forkLsn: number, reason: string): void {
    const position = this.applierInstance.position
    if (position.lsn <= forkLsn) return
    const dir = join(this.config.dataDir, 'discarded')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `epoch${position.epoch}-lsn${forkLsn + 1}-${position.lsn}-${Date.now()}.jsonl`)
    const lines: string[] = []
    try {
      for (let from = forkLsn + 1; from <= position.lsn; ) {
        const entries = this.applierInstance.store.read(from, 1000, 16 * 1024 * 1024)
        if (entries.length === 0) break
        for (const entry of entries) lines.push(JSON.stringify(describeEntry(entry)))
        from = entries[entries.length - 1]!.lsn + 1
      }
    } catch (error) {
      // A corrupted entry cannot be kept; say so and keep what was read.
      this.logger.error({ err: error }, 'could not read every entry past the fork point')
    }
    writeFileSync(file, lines.length === 0 ? '' : `${lines.join('\n')}\n`)
    this.logger.warn({ discarded: lines.length, fromLsn: forkLsn + 1, toLsn: position.lsn, file, reason }, `discarding ${lines.length} entries past the fork point; they are kept in ${file}`)
  }

  async close(): Promise<void> {
    clearInterval(this.retentionTimer)
    await this.follower.stop()
    this.flusher?.close()
    this.connection.close()
  }
}

/** An entry as a person can read it: SQL text for DDL, base64 for changesets. */
function describeEntry(entry: LogEntry): Record<string, unknown> {
  let ops: unknown
  try {
    ops = decodeOps(entry.ops).map((op) =>
      op.kind === 'changeset' ? { changeset: Buffer.from(op.bytes).toString('base64') } : op.kind === 'ddl' ? { ddl: op.sql } : op.kind === 'load' ? { load: true } : { sequence: op.rows },
    )
  } catch {
    ops = { raw: Buffer.from(entry.ops).toString('base64') }
  }
  return { lsn: entry.lsn, epoch: entry.epoch, time: new Date(entry.time).toISOString(), ops }
}
