/**
 * The replica's parts: the apply connection and applier, the follower that streams from the
 * master, and snapshot installation (which swaps the database file under the node).
 */
import { join } from 'node:path'
import type { Clock } from '../shared/clock.ts'
import type { Logger } from '../shared/logger.ts'
import { Follower } from '../replica/follower.ts'
import { Applier } from '../replica/applier.ts'
import { downloadSnapshot } from '../replica/snapshot-download.ts'
import { Retention } from '../replication-log/retention.ts'
import { openApplier, replaceDatabase, type Connection } from '../storage/index.ts'
import type { NodeConfig } from './config.ts'

export class ReplicaRole {
  readonly follower: Follower
  private connection: Connection
  private applierInstance: Applier
  private readonly retention = new Retention()
  private readonly retentionTimer: NodeJS.Timeout
  private readonly config: NodeConfig & { masterUrl: string }
  private readonly dbPath: string
  private readonly logger: Logger
  /** Called around a snapshot install, so the node can close and reopen its read connection. */
  private readonly onSwap: { before: () => void; after: () => void }

  constructor(
    config: NodeConfig & { masterUrl: string },
    dbPath: string,
    nodeId: string,
    url: () => string,
    clock: Clock,
    logger: Logger,
    onSwap: { before: () => void; after: () => void },
  ) {
    this.config = config
    this.dbPath = dbPath
    this.logger = logger
    this.onSwap = onSwap
    this.connection = openApplier(dbPath, config.synchronous)
    this.applierInstance = new Applier(this.connection)
    this.rebuildRetention()
    this.follower = new Follower({
      nodeId,
      url,
      masterUrl: config.masterUrl,
      clock,
      logger,
      applier: () => this.applierInstance,
      bootstrap: () => this.installSnapshot(),
      reconnectBaseMs: 50,
      reconnectCapMs: 2000,
      silenceMsMax: config.silenceMsMax,
      applyEntriesMax: 5000,
      applyDelayMs: config.applyDelayMs,
    })
    this.follower.on('applied', () => this.noteApplied())
    this.retentionTimer = setInterval(() => this.truncateLog(), 5000)
    this.retentionTimer.unref()
  }

  get applier(): Applier {
    return this.applierInstance
  }

  start(): void {
    this.follower.start()
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

  private async installSnapshot(): Promise<void> {
    const download = join(this.config.dataDir, 'snapshot.download')
    const { lsn, bytes } = await downloadSnapshot(this.config.masterUrl, download)
    this.onSwap.before()
    try {
      this.connection.exec('PRAGMA wal_checkpoint(TRUNCATE)')
      this.connection.close()
      replaceDatabase(this.dbPath, download)
    } finally {
      this.connection = openApplier(this.dbPath, this.config.synchronous)
      this.applierInstance = new Applier(this.connection)
      this.rebuildRetention()
      this.onSwap.after()
    }
    this.logger.info({ lsn, bytes }, 'installed a snapshot of the master')
  }

  async close(): Promise<void> {
    clearInterval(this.retentionTimer)
    await this.follower.stop()
    this.connection.close()
  }
}
