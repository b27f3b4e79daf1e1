import { internalPrefix } from './sql-policy.ts'
import type { Connection } from './sqlite.ts'

/**
 * Schema facts replication depends on. Virtual tables are skipped (their shadow tables are
 * real tables and are checked and replicated like any other).
 */
export interface TableInfo {
  name: string
  /** Primary-key columns in key order; empty when the table has none. */
  primaryKey: string[]
  withoutRowid: boolean
}

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
    return { name, primaryKey: columns.map((c) => c.name), withoutRowid: /\bWITHOUT\s+ROWID\s*$/i.test(sql) }
  })
}

/** Tables the session extension would silently ignore: they have no PRIMARY KEY. */
export function tablesWithoutPrimaryKey(connection: Connection): string[] {
  return userTables(connection)
    .filter((t) => t.primaryKey.length === 0)
    .map((t) => t.name)
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
