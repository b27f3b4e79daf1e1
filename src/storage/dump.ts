/**
 * The database as SQL text, as sqlite3's .dump writes it (GET /db/backup?fmt=sql): the schema
 * and one INSERT per row, between BEGIN and COMMIT, without Tandem's own tables. Values are
 * written by SQLite's quote(), which writes a REAL with the digits that read back as the same
 * double. Virtual tables (FTS5) are created by their CREATE VIRTUAL TABLE and filled through it;
 * their shadow tables are left out.
 */
import { internalPrefix } from './sql-policy.ts'
import { isKeyedByRowid, quoteIdentifier, rowidColumn } from './schema.ts'
import type { Connection } from './sqlite.ts'

interface SchemaRow {
  type: string
  name: string
  sql: string
}

/** Lines of the dump, each ending in a newline, read in one read transaction the caller holds. */
export function* dumpLines(connection: Connection): Generator<string> {
  yield 'PRAGMA foreign_keys=OFF;\n'
  yield 'BEGIN TRANSACTION;\n'
  const shadows = new Set((connection.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'`).all() as { name: string }[]).map((r) => r.name))
  const objects = (connection.prepare(`SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid`).all() as SchemaRow[]).filter(
    (o) => !o.name.startsWith('sqlite_') && !o.name.startsWith(internalPrefix) && !shadows.has(o.name),
  )
  for (const table of objects.filter((o) => o.type === 'table')) {
    yield `${table.sql};\n`
    yield* rowsOf(connection, table.name, !/^CREATE\s+VIRTUAL\b/i.test(table.sql))
  }
  if (connection.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'`).get() !== undefined) {
    yield 'DELETE FROM sqlite_sequence;\n'
    for (const row of connection.prepare(`SELECT quote(name) AS name, quote(seq) AS seq FROM sqlite_sequence`).iterate() as IterableIterator<{ name: string; seq: string }>) {
      yield `INSERT INTO sqlite_sequence VALUES(${row.name},${row.seq});\n`
    }
  }
  for (const object of objects.filter((o) => o.type !== 'table')) yield `${object.sql};\n`
  yield 'COMMIT;\n'
}

/**
 * One INSERT per row; with a column list when the table has generated or hidden columns, which
 * take no values, and when it has no PRIMARY KEY: its rowids are written too (as sqlite3's
 * `.dump --preserve-rowids` does), since replication names its rows by them.
 */
function* rowsOf(connection: Connection, table: string, isOrdinary: boolean): Generator<string> {
  const columns = connection.prepare('SELECT name, hidden FROM pragma_table_xinfo(?)').all(table) as { name: string; hidden: number }[]
  const byRowid = isOrdinary && isKeyedByRowid(connection, table)
  const written = [...(byRowid ? [rowidColumn] : []), ...columns.filter((c) => c.hidden === 0).map((c) => quoteIdentifier(c.name))]
  const list = written.length === columns.length && !byRowid ? '' : `(${written.join(',')})`
  const select = connection.prepare(`SELECT ${written.map((c) => `quote(${c})`).join(' || \',\' || ')} AS v FROM ${quoteIdentifier(table)}`)
  for (const row of select.iterate() as IterableIterator<{ v: string }>) yield `INSERT INTO ${quoteIdentifier(table)}${list} VALUES(${row.v});\n`
}
