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
  runClientStatement,
  type GuardedConnection,
  type SchemaGeneration,
  type SqlStatement,
  type StatementResult,
} from '../storage/index.ts'

export const writeViaQueryError = 'attempt to change database via query operation'

export class LocalReads {
  private readonly reader: GuardedConnection
  private readonly log: LogStore
  /** The node's: while it stands still, a statement's columns are known from its last run. */
  private readonly schema: SchemaGeneration

  constructor(path: string, schema: SchemaGeneration) {
    this.reader = openReader(path)
    this.schema = schema
    this.log = new LogStore(this.reader.connection, (fn) => this.reader.policy.internally(fn))
  }

  query(statements: readonly SqlStatement[], transaction: boolean): StatementResult[] {
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
  queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string {
    return resultsJson(this.query(statements, transaction), format)
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return statements.some((s) => classify(this.reader, s.sql).isWrite)
  }

  /** The checksum of every user table, with the position it was taken at (one read transaction). */
  checksum(): { lsn: number; epoch: number; checksum: string; tables: Record<string, string> } {
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
