/**
 * `last_insert_id` and `rows_affected` as rqlite answers them. rqlite answers every executed
 * statement with its connection's sqlite3_last_insert_rowid() and sqlite3_changes(), which a
 * statement that inserts no rowid row (an UPDATE, a WITHOUT ROWID insert, DDL) leaves as the
 * last statement that did set them. The master's writer also runs Tandem's own inserts (the log
 * entry of every batch), which move SQLite's counters: answered as they stand, an UPDATE said
 * `last_insert_id` was the previous LSN.
 *
 * So the counters clients see are kept here, moved by client statements only. Before a client
 * write, SQLite's last insert rowid is set back to the client's (by inserting that rowid into a
 * TEMP table of this connection, which replicates nothing), so that whatever the write does, the
 * rowid SQLite reports after it is the one rqlite would report.
 */
import type { Connection, ExecResult, Statement } from '../storage/index.ts'

export class ClientCounters {
  private lastInsertId: number | bigint = 0
  private changes = 0
  private readonly lastRowid: Statement
  private readonly clear: Statement
  private readonly restore: Statement
  private readonly internally: <T>(fn: () => T) => T

  /** `internally`: runs Tandem's own statements past the connection's SQL policy. */
  constructor(connection: Connection, internally: <T>(fn: () => T) => T) {
    this.internally = internally
    internally(() => connection.exec('CREATE TEMP TABLE IF NOT EXISTS _tandem_rowid (x)'))
    this.lastRowid = internally(() => connection.prepare('SELECT last_insert_rowid() AS id, changes() AS n'))
    this.lastRowid.setReadBigInts(true)
    this.clear = internally(() => connection.prepare('DELETE FROM temp._tandem_rowid'))
    this.restore = internally(() => connection.prepare('INSERT INTO temp._tandem_rowid(rowid) VALUES (?)'))
  }

  /**
   * Tandem inserted rows of its own on this connection since the last client write (a batch's log
   * entry, a job's rows, a load): the next client write sets SQLite's rowid back first. Client
   * writes in between leave SQLite's counter equal to the client's, so they skip the check.
   */
  private isStale = true

  /** Tandem's own statements ran: the next client write checks SQLite's last insert rowid. */
  markStale(): void {
    this.isStale = true
  }

  /** Before a client write: SQLite's last insert rowid is the client's again. */
  beforeWrite(): void {
    if (!this.isStale) return
    this.isStale = false
    this.internally(() => {
      const now = (this.lastRowid.get() as { id: bigint }).id
      if (now === BigInt(this.lastInsertId)) return
      this.clear.run()
      this.restore.run(BigInt(this.lastInsertId))
    })
  }

  /** A client INSERT, UPDATE or DELETE ran (after beforeWrite()): its counters are the client's now. */
  wrote(result: ExecResult): ExecResult {
    this.changes = result.rowsAffected
    this.lastInsertId = result.lastInsertId
    return result
  }

  /** A client write answered rows (RETURNING) ran: its counters, as SQLite left them. */
  wroteRows(): void {
    const { id, n } = this.internally(() => this.lastRowid.get() as { id: bigint; n: bigint })
    this.changes = Number(n)
    this.lastInsertId = id >= BigInt(Number.MIN_SAFE_INTEGER) && id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : id
  }

  /**
   * A client write failed: SQLite counts no change for a statement that ended in an error, but
   * keeps the rowid of a row it inserted before it failed (statement rollback does not undo it).
   */
  failed(): void {
    this.changes = 0
    try {
      this.wroteRows()
      this.changes = 0
    } catch {
      // The statement was interrupted (its time limit, a stop), and SQLite says so to every call
      // until it returns: the caller's error is what matters, the counters stay as they were.
    }
  }

  /** A statement that changes neither counter (DDL): the ones the last client write left. */
  unchanged(): ExecResult {
    return { kind: 'exec', rowsAffected: this.changes, lastInsertId: this.lastInsertId }
  }
}
