import { SqlPolicy } from './sql-policy.ts'
import { StatementCache } from './statement-cache.ts'
import { valueBytesMax } from '../shared/limits.ts'
import { openConnection, type Connection } from './sqlite.ts'
import { watchConnection, type WatchedConnection } from './statement-limits.ts'

export type Synchronous = 'full' | 'normal' | 'off'

/** A connection that runs client SQL, with the policy that guards it. */
export interface GuardedConnection {
  connection: Connection
  policy: SqlPolicy
  statements: StatementCache
  /** Its statements' time limit and cancellation; undefined when limits are unavailable. */
  watched: WatchedConnection | undefined
}

/**
 * The master's writer: WAL, the chosen synchronous level, foreign keys enforced. It runs client
 * SQL, so the policy guards it; Tandem's own statements run through `policy.internally()`.
 */
export function openWriter(path: string, synchronous: Synchronous, queryTimeoutMs = 0): GuardedConnection {
  const connection = openConnection(path, { defensive: true, foreignKeys: true, valueBytesMax, extensions: true })
  configureWrites(connection, synchronous)
  return guard(connection, queryTimeoutMs)
}

/**
 * A replica's apply connection: foreign keys off (the master already ran their actions, and
 * changesets carry the results) and defensive off (FTS5 shadow tables must be writable).
 * It never runs client SQL.
 */
export function openApplier(path: string, synchronous: Synchronous): Connection {
  const connection = openConnection(path, { defensive: false, foreignKeys: false })
  configureWrites(connection, synchronous)
  return connection
}

/**
 * A read-only connection for client queries: it cannot write, whatever the SQL says. Each
 * statement may run `queryTimeoutMs` (0: no limit), and can be cancelled from any thread.
 */
export function openReader(path: string, queryTimeoutMs = 0): GuardedConnection {
  const connection = openConnection(path, { readOnly: true, defensive: true, valueBytesMax, extensions: true })
  return guard(connection, queryTimeoutMs)
}

function guard(connection: Connection, queryTimeoutMs: number): GuardedConnection {
  const policy = new SqlPolicy()
  policy.install(connection)
  const watched = watchConnection(connection, queryTimeoutMs)
  return { connection, policy, statements: new StatementCache(connection, policy), watched }
}

function configureWrites(connection: Connection, synchronous: Synchronous): void {
  connection.exec('PRAGMA journal_mode = WAL')
  connection.exec(`PRAGMA synchronous = ${synchronous.toUpperCase()}`)
}
