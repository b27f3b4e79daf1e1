/**
 * Client reads on a node's read-only connection. It cannot write whatever the SQL says;
 * statements that would write are answered with rqlite's per-statement error before they run.
 */
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import { resultsJson } from '../http-api/read-answer.ts'
import { LogStore } from '../replication-log/log-store.ts'
import {
  checksumTables,
  classify,
  openReader,
  effectiveLimitMs,
  queryTimeoutError,
  runClientStatement,
  type GuardedConnection,
  type SchemaGeneration,
  type SqlStatement,
  type Statement,
  type StatementResult,
} from '../storage/index.ts'

export const writeViaQueryError = 'attempt to change database via query operation'

/** Thrown by query() when a statement ran past the budget it was given, shorter than its limit. */
export class OverBudget extends Error {
  constructor() {
    super('the read ran past its budget on this thread')
  }
}

export class LocalReads {
  private readonly reader: GuardedConnection
  private readonly log: LogStore
  /** The node's: while it stands still, a statement's columns are known from its last run. */
  private readonly schema: SchemaGeneration

  /** The newest log entry's position, prepared at its first use (queryJsonAt). */
  private newestEntry: Statement | undefined

  /** The node's --query-timeout: each statement's limit unless a read asks for less (0: none). */
  private readonly queryTimeoutMs: number

  /**
   * `budgetMs`: the limit this connection's reads usually run with (see query()); without it,
   * `queryTimeoutMs`. Setting another limit for one read costs two calls into SQLite.
   */
  constructor(path: string, schema: SchemaGeneration, queryTimeoutMs = 0, budgetMs?: number) {
    this.reader = openReader(path, budgetMs ?? queryTimeoutMs)
    this.queryTimeoutMs = queryTimeoutMs
    this.schema = schema
    this.log = new LogStore(this.reader.connection, (fn) => this.reader.policy.internally(fn))
  }

  /**
   * Runs the statements, each stopped past `limitMs` (undefined: the connection's limit) and
   * answered rqlite's `query timeout`. With `budgetMs` shorter than the limit, a statement that
   * runs past the budget throws OverBudget instead: the caller runs the read where it may take
   * longer (a read changes nothing, so running it again is safe).
   */
  query(statements: readonly SqlStatement[], transaction: boolean, limitMs?: number, budgetMs?: number): StatementResult[] {
    const watched = this.reader.watched
    if (watched === undefined) return this.run(statements, transaction)
    const limit = effectiveLimitMs(limitMs, this.queryTimeoutMs)
    const isBudgeted = budgetMs !== undefined && (limit === 0 || budgetMs < limit)
    const results = watched.withLimit(isBudgeted ? budgetMs : limit, () => this.run(statements, transaction))
    if (isBudgeted && results.some((r) => r.kind === 'error' && r.error === queryTimeoutError)) throw new OverBudget()
    return results
  }

  private run(statements: readonly SqlStatement[], transaction: boolean): StatementResult[] {
    const { connection, policy } = this.reader
    // One read transaction for the whole request when asked: the statements see one snapshot.
    if (transaction) policy.internally(() => connection.exec('BEGIN'))
    // In a transaction the snapshot may be older than the schema generation: ask every time.
    const schema = transaction ? undefined : this.schema
    try {
      return statements.map((statement) =>
        runClientStatement(
          this.reader,
          statement,
          (observation) => {
            if (observation.isWrite) throw new Error(writeViaQueryError)
          },
          schema,
        ),
      )
    } finally {
      if (transaction) policy.internally(() => connection.exec('COMMIT'))
    }
  }

  /**
   * query(), answered as the HTTP API's `results` JSON text (see read-answer.ts): on a read
   * thread this keeps formatting and serialization off the main thread.
   */
  queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions, limitMs?: number, budgetMs?: number): string {
    return resultsJson(this.query(statements, transaction, limitMs, budgetMs), format)
  }

  /**
   * queryJson() of one statement in a read transaction, with the log position (LSN and epoch of
   * its newest entry) of the snapshot it read: what an HTTP worker reports, exactly, as the
   * position of its answer. The statement runs first, so its snapshot begins while it runs, as
   * in autocommit (what the schema generation's check needs), and the position is read after it
   * in the same snapshot.
   */
  queryJsonAt(statement: SqlStatement, format: FormatOptions, budgetMs?: number): { text: string; lsn: number; epoch: number | undefined } {
    const { connection, policy } = this.reader
    policy.internally(() => connection.exec('BEGIN'))
    try {
      const text = this.queryJson([statement], false, format, undefined, budgetMs)
      const newest = policy.internally(() => (this.newestEntry ??= connection.prepare('SELECT lsn, epoch FROM _tandem_log ORDER BY lsn DESC LIMIT 1')).get()) as { lsn: number; epoch: number } | undefined
      return { text, lsn: newest?.lsn ?? 0, epoch: newest?.epoch }
    } finally {
      policy.internally(() => connection.exec('COMMIT'))
    }
  }

  /** Its connection's handle for StatementLimits.cancel() from another thread; undefined without limits. */
  get watchedId(): number | undefined {
    return this.reader.watched?.id
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return statements.some((s) => classify(this.reader, s.sql).isWrite)
  }

  /** The checksum of every user table, with the position it was taken at (one read transaction). */
  checksum(): { lsn: number; epoch: number; checksum: string; tables: Record<string, string> } {
    const { watched } = this.reader
    // Every row of every table: past any client statement's time or result limit on a big database.
    if (watched !== undefined) return watched.exempt(() => this.checksumHere())
    return this.checksumHere()
  }

  private checksumHere(): { lsn: number; epoch: number; checksum: string; tables: Record<string, string> } {
    const { connection, policy } = this.reader
    return policy.internally(() => {
      connection.exec('BEGIN')
      try {
        const position = this.log.position()
        return { ...position, ...checksumTables(connection) }
      } finally {
        connection.exec('COMMIT')
      }
    })
  }

  close(): void {
    this.reader.connection.close()
  }
}
