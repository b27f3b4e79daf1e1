/**
 * The replication log, stored in the node's own database so that data and log commit in one
 * transaction and can never disagree.
 *
 *     _tandem_log(lsn INTEGER PRIMARY KEY, epoch INTEGER, time REAL, crc INTEGER, ops BLOB)
 *     _tandem_meta(key TEXT PRIMARY KEY, value)       -- 'epoch': the highest epoch this node knows
 *     _tandem_idempotency(key, hash, lsn, results, at) -- replicated; see master/idempotency.ts
 *
 * Validity: LSNs are contiguous from the oldest retained entry to the newest; every row's crc
 * matches (see log-entry.ts). The node's position is its newest entry; an empty log means
 * position (epoch, 0). Retention deletes from the oldest end only and always keeps the newest
 * entry, so the position survives truncation.
 */
import { assert } from '../shared/assert.ts'
import type { Connection, Statement } from '../storage/sqlite.ts'
import { verifyEntry, type LogEntry, type Position } from './log-entry.ts'

export type Internally = <T>(fn: () => T) => T

const schema = `
  CREATE TABLE IF NOT EXISTS _tandem_log (
    lsn INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, time REAL NOT NULL, crc INTEGER NOT NULL, ops BLOB NOT NULL
  );
  CREATE TABLE IF NOT EXISTS _tandem_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
  INSERT OR IGNORE INTO _tandem_meta(key, value) VALUES ('epoch', 1);
  CREATE TABLE IF NOT EXISTS _tandem_idempotency (
    key TEXT PRIMARY KEY, hash TEXT NOT NULL, lsn INTEGER NOT NULL, results TEXT NOT NULL, at REAL NOT NULL
  ) WITHOUT ROWID;
`

export class LogStore {
  private readonly insert: Statement
  private readonly selectRange: Statement
  private readonly selectOne: Statement

  private readonly connection: Connection
  private readonly internally: Internally

  constructor(connection: Connection, internally: Internally = (fn) => fn()) {
    this.connection = connection
    this.internally = internally
    this.insert = this.internally(() => connection.prepare('INSERT INTO _tandem_log(lsn, epoch, time, crc, ops) VALUES (?, ?, ?, ?, ?)'))
    this.selectRange = this.internally(() =>
      connection.prepare('SELECT lsn, epoch, time, crc, ops FROM _tandem_log WHERE lsn >= ? ORDER BY lsn LIMIT ?'),
    )
    this.selectOne = this.internally(() => connection.prepare('SELECT lsn, epoch, time, crc, ops FROM _tandem_log WHERE lsn = ?'))
  }

  /** Creates the log tables; call once on the node's writing connection before any LogStore. */
  static ensureSchema(connection: Connection, internally: Internally = (fn) => fn()): void {
    internally(() => connection.exec(schema))
  }

  /** Appends inside the caller's transaction. */
  append(entry: LogEntry): void {
    this.internally(() => this.insert.run(entry.lsn, entry.epoch, entry.time, entry.crc, entry.ops))
  }

  position(): Position {
    return this.internally(() => {
      const last = this.connection.prepare('SELECT lsn, epoch FROM _tandem_log ORDER BY lsn DESC LIMIT 1').get() as Position | undefined
      return last ?? { lsn: 0, epoch: this.epoch() }
    })
  }

  /** The oldest LSN still held, or undefined when the log is empty. */
  oldestLsn(): number | undefined {
    return this.internally(() => {
      const row = this.connection.prepare('SELECT min(lsn) AS lsn FROM _tandem_log').get() as { lsn: number | null }
      return row.lsn ?? undefined
    })
  }

  epoch(): number {
    return this.internally(() => {
      const row = this.connection.prepare(`SELECT value FROM _tandem_meta WHERE key = 'epoch'`).get() as { value: number } | undefined
      return row?.value ?? 1
    })
  }

  get(lsn: number): LogEntry | undefined {
    const row = this.internally(() => this.selectOne.get(lsn)) as LogEntry | undefined
    if (row !== undefined) verifyEntry(row)
    return row
  }

  /**
   * Entries from `fromLsn` on, in order, verified, up to `countMax` entries or about `bytesMax`
   * bytes (at least one entry when any exists).
   */
  read(fromLsn: number, countMax: number, bytesMax: number): LogEntry[] {
    const rows = this.internally(() => this.selectRange.all(fromLsn, countMax)) as LogEntry[]
    const out: LogEntry[] = []
    let bytes = 0
    // The oldest entries may have been truncated since the caller looked: return nothing, and the
    // caller sees from oldestLsn() that it needs a snapshot.
    if (rows[0] !== undefined && rows[0].lsn !== fromLsn) return []
    for (const row of rows) {
      verifyEntry(row)
      assert(row.lsn === fromLsn + out.length, `log must be contiguous: expected ${fromLsn + out.length}, found ${row.lsn}`)
      out.push(row)
      bytes += row.ops.length
      if (bytes >= bytesMax) break
    }
    return out
  }

  /** (lsn, size) of every entry, oldest first, for rebuilding retention accounting at start. */
  sizes(): IterableIterator<{ lsn: number; size: number }> {
    return this.internally(() =>
      this.connection.prepare('SELECT lsn, length(ops) + 32 AS size FROM _tandem_log ORDER BY lsn').iterate(),
    ) as IterableIterator<{ lsn: number; size: number }>
  }

  /** Deletes entries before `lsn`; never the newest. */
  truncateBefore(lsn: number): void {
    this.internally(() =>
      this.connection.prepare('DELETE FROM _tandem_log WHERE lsn < ? AND lsn < (SELECT max(lsn) FROM _tandem_log)').run(lsn),
    )
  }
}
