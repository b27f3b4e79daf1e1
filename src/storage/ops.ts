/**
 * The row-level effect of one committed transaction, in order: schema changes as SQL text,
 * row changes as SQLite changesets, and the final content of sqlite_sequence when it changed
 * (sessions skip that table: it has no primary key).
 */
export type Op =
  | { kind: 'ddl'; sql: string }
  | { kind: 'changeset'; bytes: Uint8Array }
  | { kind: 'sequence'; rows: SequenceRow[] }
  /**
   * The master's database was replaced whole here (POST /db/load): no rows travel, a replica
   * copies the master's database as of this entry or later instead (master/database-load.ts).
   */
  | { kind: 'load' }

export type SequenceRow = [name: string, seq: number]
