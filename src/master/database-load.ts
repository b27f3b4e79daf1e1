/**
 * Loading a whole database into the master (POST /db/load, `tandem master --import`): the
 * master's tables, views, indexes and triggers are replaced by those of a SQLite file, in one
 * transaction that also appends a `load` entry. The entry carries no rows: a replica that
 * reaches it copies the master's database (a snapshot) instead of applying it, so a load of any
 * size is one small entry, and every node ends with the same bytes.
 *
 * Runs on the master's writer, inside a transaction the caller opened: the file is attached for
 * the copy and detached after.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { TandemError, messageOf } from '../shared/errors.ts'
import {
  internalPrefix,
  prepareClientPart,
  isKeyedByRowid,
  quoteIdentifier,
  rowidColumn,
  runPrepared,
  withoutCounts,
  type Connection,
  type GuardedConnection,
  type StatementResult,
} from '../storage/index.ts'

const source = 'tandem_load'

/** What is loaded: a SQLite file, or SQL text. */
export type LoadSource = { file: string } | { sql: string }

/** A load of the file at `path`: a SQLite database when it starts like one, else SQL text (UTF-8, read whole). */
export function loadSourceOf(path: string, decode: (bytes: Uint8Array) => string = (bytes) => Buffer.from(bytes).toString('utf8')): LoadSource {
  const head = Buffer.alloc(16)
  const fd = openSync(path, 'r')
  let bytesRead: number
  try {
    bytesRead = readSync(fd, head, 0, 16, 0)
  } finally {
    closeSync(fd)
  }
  return bytesRead === 16 && head.toString('latin1') === 'SQLite format 3\u0000' ? { file: path } : { sql: decode(readFileSync(path)) }
}

/** What a load copied. */
export interface LoadSummary {
  tables: number
  rows: number
  indexes: number
  views: number
  triggers: number
}

interface SchemaRow {
  type: 'table' | 'index' | 'view' | 'trigger'
  name: string
  sql: string | null
}

/** Attaches `path` for a load; detach() after the transaction ended. */
export function attachSource(connection: Connection, path: string): { detach: () => void } {
  try {
    connection.prepare(`ATTACH DATABASE ? AS ${source}`).run(path)
  } catch (error) {
    // Never the master's own damage (WritePipeline.damage): the file is the client's.
    throw new TandemError('BAD_REQUEST', `the database file cannot be opened: ${messageOf(error)}`)
  }
  const detach = () => connection.exec(`DETACH DATABASE ${source}`)
  try {
    const check = connection.prepare(`PRAGMA ${source}.quick_check`).all() as { quick_check: string }[]
    if (check.length !== 1 || check[0]!.quick_check !== 'ok') {
      throw new TandemError('BAD_REQUEST', `the database file fails SQLite's quick_check: ${check.slice(0, 3).map((c) => c.quick_check).join('; ')}`)
    }
  } catch (error) {
    detach()
    if (error instanceof TandemError) throw error
    throw new TandemError('BAD_REQUEST', `the database file cannot be read: ${messageOf(error)}`)
  }
  return { detach }
}

/**
 * Replaces the main database's schema and rows with the attached source's, on the writer (its
 * transaction open). Tandem's own tables stay as they are on both sides (a Tandem backup holds
 * them: its log is not this cluster's). Foreign keys are checked at COMMIT, once everything is in.
 *
 * The file's schema is the client's SQL: each CREATE statement it holds runs under the SQL
 * policy, like a client's (a trigger naming `_tandem_log`, or a schema entry holding a second
 * statement, is refused). Only Tandem's own statements, which quote every name they take from
 * the file, run past it.
 */
export function copyDatabase(writer: GuardedConnection): LoadSummary {
  const { connection } = writer
  const own = <T>(fn: () => T) => writer.policy.internally(fn)
  own(() => connection.exec('PRAGMA defer_foreign_keys = ON'))
  const objects = own(() => sourceObjects(connection))
  own(() => dropUserObjects(connection))
  const summary: LoadSummary = { tables: 0, rows: 0, indexes: 0, views: 0, triggers: 0 }
  for (const table of objects.filter((o) => o.type === 'table')) {
    runSchemaStatement(writer, table.sql ?? '')
    const result = own(() => {
      // A table without a PRIMARY KEY keeps its rowids: they are what replication names its rows by.
      const rowid = isKeyedByRowid(connection, table.name) ? [rowidColumn] : []
      const list = [...rowid, ...copiedColumns(connection, table.name)].map(quoteIdentifier).join(', ')
      return connection.prepare(`INSERT INTO main.${quoteIdentifier(table.name)}(${list}) SELECT ${list} FROM ${source}.${quoteIdentifier(table.name)}`).run()
    })
    summary.tables++
    summary.rows += Number(result.changes)
  }
  // Indexes before triggers and views after tables: the copy fires no trigger, and a view may name any table.
  for (const type of ['index', 'view', 'trigger'] as const) {
    for (const object of objects.filter((o) => o.type === type && o.sql !== null)) {
      runSchemaStatement(writer, object.sql!)
      if (type === 'index') summary.indexes++
      else if (type === 'view') summary.views++
      else summary.triggers++
    }
  }
  own(() => copySequence(connection))
  return summary
}

/** One CREATE statement of the file's schema, under the SQL policy (SQL_REFUSED when it refuses). */
function runSchemaStatement(writer: GuardedConnection, sql: string): void {
  const split = writer.statements.split(sql)
  if (split.length !== 1 || split[0]!.keyword !== 'CREATE') {
    throw new TandemError('BAD_REQUEST', `the database file's schema holds an entry that is not one CREATE statement, and nothing was loaded: ${sql.slice(0, 120)}`)
  }
  runPrepared(prepareClientPart(writer, split[0]!, true).statement, undefined)
}

/** The source's schema in creation order, without SQLite's and Tandem's own objects and the shadow tables of virtual ones. */
function sourceObjects(connection: Connection): SchemaRow[] {
  const shadows = new Set(
    (connection.prepare(`SELECT name FROM pragma_table_list WHERE schema = '${source}' AND type = 'shadow'`).all() as { name: string }[]).map((r) => r.name),
  )
  const rows = connection.prepare(`SELECT type, name, sql FROM ${source}.sqlite_schema ORDER BY rowid`).all() as SchemaRow[]
  return rows.filter((r) => !r.name.startsWith('sqlite_') && !r.name.startsWith(internalPrefix) && !shadows.has(r.name))
}

/** Drops every table, view and trigger of the main database but Tandem's own (indexes go with their tables). */
function dropUserObjects(connection: Connection): void {
  const shadows = new Set((connection.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'`).all() as { name: string }[]).map((r) => r.name))
  const objects = (connection.prepare(`SELECT type, name FROM main.sqlite_schema WHERE type IN ('trigger', 'view', 'table') ORDER BY rowid DESC`).all() as SchemaRow[]).filter(
    (o) => !o.name.startsWith('sqlite_') && !o.name.startsWith(internalPrefix) && !shadows.has(o.name),
  )
  for (const type of ['trigger', 'view', 'table'] as const) {
    for (const object of objects.filter((o) => o.type === type)) connection.exec(`DROP ${type.toUpperCase()} main.${quoteIdentifier(object.name)}`)
  }
}

/** The columns a copy writes: every column but generated ones (SQLite computes those). */
function copiedColumns(connection: Connection, table: string): string[] {
  const rows = connection.prepare(`SELECT name, hidden FROM pragma_table_xinfo(?, '${source}')`).all(table) as { name: string; hidden: number }[]
  // hidden: 0 a column, 1 a virtual table's hidden column, 2 and 3 generated columns.
  return rows.filter((r) => r.hidden === 0).map((r) => r.name)
}

/** AUTOINCREMENT counters come with their tables. */
function copySequence(connection: Connection): void {
  const has = (schema: string) => connection.prepare(`SELECT 1 FROM ${schema}.sqlite_schema WHERE name = 'sqlite_sequence'`).get() !== undefined
  if (!has(source) || !has('main')) return
  connection.exec('DELETE FROM main.sqlite_sequence')
  connection.exec(`INSERT INTO main.sqlite_sequence(name, seq) SELECT name, seq FROM ${source}.sqlite_sequence`)
}

/** Statements of a dump that Tandem's own transaction and foreign-key handling replace. */
const dumpFraming = /^(?:BEGIN|COMMIT|END|ROLLBACK)\b|^PRAGMA\s+foreign_keys\s*=/i

/**
 * Runs SQL text as sqlite3 .dump writes it, statement by statement under the SQL policy and the
 * statement time limit, inside the caller's transaction: its BEGIN and COMMIT are left out.
 * Throws BAD_REQUEST naming the first statement that fails (the caller rolls everything back).
 * Answers the last statement's result, as rqlite does.
 */
export function runDump(writer: GuardedConnection, sql: string): StatementResult[] {
  const parts = writer.statements.split(sql)
  let last: StatementResult | undefined
  let index = 0
  for (const part of parts) {
    index++
    if (dumpFraming.test(part.sql.trim())) continue
    let result: StatementResult
    try {
      const prepared = prepareClientPart(writer, part, true)
      result = runPrepared(prepared.statement, undefined)
      if (prepared.observation.isDdl && result.kind === 'exec') result = withoutCounts(result)
    } catch (error) {
      throw new TandemError('BAD_REQUEST', `statement ${index} of the SQL text failed, and nothing was loaded: ${messageOf(error)} (${part.sql.slice(0, 120)})`, { statement: index })
    }
    last = result
  }
  if (last === undefined) throw new TandemError('BAD_REQUEST', 'the SQL text holds no statement to load')
  return [last]
}
