import { SqlPolicy } from './sql-policy.ts'
import { StatementCache } from './statement-cache.ts'
import { valueBytesMax } from '../shared/limits.ts'
import { openConnection, type Connection } from './sqlite.ts'

export type Synchronous = 'full' | 'normal' | 'off'

/** A connection that runs client SQL, with the policy that guards it. */
export interface GuardedConnection {
  connection: Connection
  policy: SqlPolicy
  statements: StatementCache
}

/**
 * The master's writer: WAL, the chosen synchronous level, foreign keys enforced. It runs client
 * SQL, so the policy guards it; Tandem's own statements run through `policy.internally()`.
 */
export function openWriter(path: string, synchronous: Synchronous): GuardedConnection {
  const connection = openConnection(path, { defensive: true, foreignKeys: true, valueBytesMax })
  configureWrites(connection, synchronous)
  return guard(connection)
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

/** A read-only connection for client queries: it cannot write, whatever the SQL says. */
export function openReader(path: string): GuardedConnection {
  const connection = openConnection(path, { readOnly: true, defensive: true, valueBytesMax })
  return guard(connection)
}

function guard(connection: Connection): GuardedConnection {
  const policy = new SqlPolicy()
  policy.install(connection)
  return { connection, policy, statements: new StatementCache(connection, policy) }
}

function configureWrites(connection: Connection, synchronous: Synchronous): void {
  connection.exec('PRAGMA journal_mode = WAL')
  connection.exec(`PRAGMA synchronous = ${synchronous.toUpperCase()}`)
}
