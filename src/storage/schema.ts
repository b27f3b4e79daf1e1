import { internalPrefix } from './sql-policy.ts'
import { engine, type Connection } from './sqlite.ts'

/**
 * Schema facts replication depends on. Virtual tables are skipped (their shadow tables are
 * real tables and are checked and replicated like any other).
 */
export interface TableInfo {
  name: string
  /** Primary-key columns in key order; empty when the table has none. */
  primaryKey: string[]
  /**
   * What identifies a row on every node: the primary key, or `_rowid_` for a table without one
   * (its changes are captured by rowid, and a rowid is the same on every node).
   */
  key: string[]
  withoutRowid: boolean
}

/** The name the session extension and Tandem read a table's rowid by. */
export const rowidColumn = '_rowid_'

export function userTables(connection: Connection): TableInfo[] {
  const rows = connection
    .prepare(
      `SELECT name, sql FROM sqlite_schema
        WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '${internalPrefix.replace(/_/g, '\\_')}%' ESCAPE '\\'
          AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
        ORDER BY name`,
    )
    .all() as { name: string; sql: string }[]
  return rows.map(({ name, sql }) => {
    const columns = connection.prepare('SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').all(name) as {
      name: string
    }[]
    const primaryKey = columns.map((c) => c.name)
    return { name, primaryKey, key: primaryKey.length > 0 ? primaryKey : [rowidColumn], withoutRowid: /\bWITHOUT\s+ROWID\s*$/i.test(sql) }
  })
}

/** No PRIMARY KEY, and `_rowid_` still names its rowid: its rows are replicated by rowid. */
export function isKeyedByRowid(connection: Connection, table: string): boolean {
  const columns = connection.prepare('SELECT name, pk FROM main.pragma_table_xinfo(?)').all(table) as { name: string; pk: number }[]
  return columns.every((c) => c.pk === 0 && c.name.toLowerCase() !== rowidColumn)
}

/**
 * Why the schema cannot be replicated exactly, or undefined when it can. A table without a
 * PRIMARY KEY is replicated by rowid, which needs Tandem's own SQLite (sqlite.ts) and a rowid
 * that `_rowid_` still names: a column of that name would hide it.
 */
export function replicationRefusal(connection: Connection): string | undefined {
  const keyless = userTables(connection).filter((t) => t.primaryKey.length === 0)
  if (keyless.length === 0) return undefined
  const names = keyless.map((t) => t.name).join(', ')
  if (!engine.rowidTables) {
    return `table ${names} has no PRIMARY KEY, and this node runs on the published SQLite binding, which replicates row changes by key only (build Tandem's own SQLite with a C compiler: npm run build; or add a PRIMARY KEY)`
  }
  const hiding = keyless.filter((t) => !isKeyedByRowid(connection, t.name))
  if (hiding.length === 0) return undefined
  return `table ${hiding.map((t) => t.name).join(', ')} has no PRIMARY KEY and a column named ${rowidColumn}, which hides the rowid Tandem replicates it by (rename the column or add a PRIMARY KEY)`
}

export interface TriggerDefinition {
  name: string
  sql: string
}

export function triggers(connection: Connection): TriggerDefinition[] {
  return connection.prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY rowid`).all() as TriggerDefinition[]
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/**
 * The tables and views of a database Tandem did not create: it has them but no `_tandem_meta`.
 * Empty for a new file and for every file Tandem made.
 */
export function foreignObjects(connection: Connection): string[] {
  const isTandems = connection.prepare(`SELECT 1 FROM sqlite_schema WHERE name = '${internalPrefix}meta'`).get() !== undefined
  if (isTandems) return []
  const rows = connection.prepare(`SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`).all() as { name: string }[]
  return rows.map((r) => r.name)
}
