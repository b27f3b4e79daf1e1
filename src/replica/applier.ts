/**
 * Applies log entries on a replica. Each batch is one local transaction that applies the
 * entries' ops and appends the entries to the replica's own log, so the replica's position moves
 * atomically with its data: a crash leaves it either before the batch or after it, never inside,
 * and it resumes from its newest log entry.
 */
import { TandemError, messageOf } from '../shared/errors.ts'
import { decodeOps, followsHistory, hashFromHex, hashHex, verifyEntry, type LogEntry, type Position } from '../replication-log/log-entry.ts'
import { LogStore } from '../replication-log/log-store.ts'
import { ensureChecksSchema, isCheckEntry, verifyNewestCheck } from '../replication-log/range-checks.ts'
import { ChangeApplier, isCorruption, type Connection, type SchemaGeneration } from '../storage/index.ts'

export class Applier {
  private readonly connection: Connection
  private readonly log: LogStore
  private readonly changes: ChangeApplier
  /** Moved around the COMMIT of every batch holding a DDL op (see SchemaGeneration). */
  private readonly schema: SchemaGeneration
  private current: Position

  constructor(connection: Connection, schema: SchemaGeneration) {
    this.connection = connection
    this.schema = schema
    LogStore.ensureSchema(connection)
    ensureChecksSchema(connection)
    this.log = new LogStore(connection)
    this.changes = new ChangeApplier(connection)
    this.current = this.log.position()
  }

  get position(): Position {
    return this.current
  }

  get store(): LogStore {
    return this.log
  }

  /**
   * Applies entries that must directly follow the current position. Throws LOG_CORRUPTED for a
   * gap or a bad checksum, and REPLICA_DIVERGED for a conflict or an entry that does not follow
   * this replica's history (its history hash differs from the one computed here: the two logs
   * hold different entries before it); either way nothing of the batch is applied.
   */
  applyBatch(entries: readonly LogEntry[]): void {
    if (entries.length === 0) return
    let expected = this.current.lsn + 1
    // An empty log has no entry before the first: its position's epoch is the highest it knows
    // (a fence raised it), which the old master's entries it has yet to receive are below.
    let epoch = this.current.lsn === 0 ? 0 : this.current.epoch
    let previousHash = hashFromHex(this.current.hash)
    for (const entry of entries) {
      if (entry.lsn !== expected) {
        throw new TandemError('LOG_CORRUPTED', `expected entry ${expected} but received ${entry.lsn}: the stream has a gap`)
      }
      if (entry.epoch < epoch) {
        throw new TandemError('LOG_CORRUPTED', `entry ${entry.lsn} is from epoch ${entry.epoch}, older than the epoch ${epoch} before it`)
      }
      epoch = entry.epoch
      verifyEntry(entry)
      if (!followsHistory(entry, previousHash)) {
        throw new TandemError(
          'REPLICA_DIVERGED',
          `entry ${entry.lsn} does not follow this replica's history: the master's log and this one differ before it (their history hashes disagree)`,
          { lsn: entry.lsn },
        )
      }
      previousHash = entry.hash
      expected++
    }
    this.connection.exec('BEGIN IMMEDIATE')
    try {
      this.changes.suppressTriggers()
      // Dropping and recreating triggers (see ChangeApplier) changes no statement's columns.
      let changesSchema = false
      for (const entry of entries) {
        const ops = decodeOps(entry.ops)
        changesSchema ||= ops.some((op) => op.kind === 'ddl')
        this.changes.apply(ops, entry.lsn)
        this.log.append(entry)
        // A check of the master's rows at this LSN: this replica's must agree, now.
        const difference = isCheckEntry(ops) ? verifyNewestCheck(this.connection) : undefined
        if (difference !== undefined) throw new TandemError('REPLICA_DIVERGED', `${difference}: this replica no longer matches the master at LSN ${entry.lsn}`, { lsn: entry.lsn })
      }
      const last = entries[entries.length - 1]!
      if (last.epoch > this.current.epoch) this.log.raiseEpoch(last.epoch)
      this.changes.restoreTriggers()
      if (changesSchema) this.schema.changing(() => this.connection.exec('COMMIT'))
      else this.connection.exec('COMMIT')
    } catch (error) {
      // SQLite may have rolled back already (SQLITE_FULL does): keep the original error.
      if (this.connection.isTransaction) this.connection.exec('ROLLBACK')
      this.changes.reset()
      // A damaged file does not heal by retrying: the replica resyncs from a snapshot.
      if (isCorruption(error)) {
        throw new TandemError('REPLICA_DIVERGED', `this replica's database file is damaged (${messageOf(error)}): it resyncs from a snapshot of the master's`, { cause: error })
      }
      throw error
    }
    const last = entries[entries.length - 1]!
    const hash = hashHex(last.hash)
    this.current = hash === undefined ? { epoch: last.epoch, lsn: last.lsn } : { epoch: last.epoch, lsn: last.lsn, hash }
  }
}
