import { TandemError, messageOf } from '../shared/errors.ts'
import type { GuardedConnection } from './database.ts'
import { keywordRefusal, textRefusal, type Observation } from './sql-policy.ts'
import { checkParameters, learnParameters } from './statement-parameters.ts'
import { bindableArgs, castSql, uncastName } from './exact-values.ts'
import type { SplitStatement } from './sql-splitter.ts'
import type { SchemaGeneration } from './schema-generation.ts'
import type { SqlParams, SqlValue, Statement } from './sqlite.ts'
import { resultTooLargeError } from './statement-limits.ts'

/** One statement of a client request: SQL text and its positional or named parameters. */
export interface SqlStatement {
  sql: string
  params?: SqlParams
}

export interface RowsResult {
  kind: 'rows'
  columns: string[]
  /** Declared column types, lower case; '' for expressions (rqlite's convention). */
  types: string[]
  values: SqlValue[][]
  /**
   * The storage class of each value of the first row ('integer', 'real', 'text', 'blob', or ''
   * for NULL), when the statement ran here: a REAL with an integral value is a number like an
   * INTEGER once read.
   */
  firstRowClasses?: string[]
}

export interface ExecResult {
  kind: 'exec'
  rowsAffected: number
  /** A bigint beyond 2^53. */
  lastInsertId: number | bigint
}

export interface ErrorResult {
  kind: 'error'
  error: string
}

export type StatementResult = (RowsResult | ExecResult | ErrorResult) & { timeSec?: number }

/**
 * Prepares a client statement (which may hold several `;`-separated statements) under the
 * policy. Throws SQL_REFUSED for refused SQL, or the SQLite error for invalid SQL.
 *
 * Statements are prepared one at a time, right before they run: a later statement may name a
 * table an earlier one creates.
 */
export function* prepareClientStatements(client: GuardedConnection, sql: string, params?: SqlParams, split = client.statements.split(sql)) {
  if (split.length === 0) throw new TandemError('BAD_REQUEST', 'empty SQL statement')
  if (params !== undefined && split.length > 1) {
    throw new TandemError('BAD_REQUEST', `parameters were given for a text holding ${split.length} statements; send one statement per parameter list`)
  }
  for (const part of split) yield prepareClientPart(client, part, part === split[split.length - 1], params)
}

/**
 * Prepares one statement of a split text under the policy (see prepareClientStatements). The
 * last one is prepared for `params`, the parameters it will run with: exact-values.ts may write
 * some of them differently.
 */
export function prepareClientPart(client: GuardedConnection, part: SplitStatement, isLast: boolean, params?: SqlParams) {
  const refusal = keywordRefusal(part.keyword) ?? textRefusal(part)
  if (refusal !== undefined) throw new TandemError('SQL_REFUSED', refusal)
  const sql = isLast ? castSql(part.sql, params) : part.sql
  const { statement, observation } = client.statements.prepare(sql)
  learnParameters(statement, sql)
  if (sql !== part.sql) castStatements.add(statement)
  return { statement, observation, sql, keyword: part.keyword, isLast }
}

/** Statements whose text exact-values.ts changed: their column names are given back. */
const castStatements = new WeakSet<Statement>()

const ddlKeywords = new Set(['CREATE', 'DROP', 'ALTER', 'REINDEX', 'ANALYZE'])

/** Does this text hold a schema change? Known from keywords before anything is prepared. */
export function holdsDdl(split: readonly SplitStatement[]): boolean {
  return split.some((part) => ddlKeywords.has(part.keyword))
}

export function isDdlKeyword(keyword: string): boolean {
  return ddlKeywords.has(keyword)
}

/** Classifies SQL without running it: does it write? is it DDL? */
export function classify(client: GuardedConnection, sql: string): { isWrite: boolean; isDdl: boolean } {
  const split = client.statements.split(sql)
  let isWrite = false
  let isDdl = false
  for (const part of split) {
    if (keywordRefusal(part.keyword) !== undefined) return { isWrite: true, isDdl: false }
    try {
      const { observation } = client.statements.prepare(part.sql)
      isWrite ||= observation.isWrite
      isDdl ||= observation.isDdl
    } catch {
      // A statement that does not prepare here (it names a table an earlier part creates, say)
      // is treated as a write so that it goes where writes go and reports its error there.
      return { isWrite: true, isDdl }
    }
  }
  return { isWrite, isDdl }
}

const minSafe = BigInt(Number.MIN_SAFE_INTEGER)
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER)

/** A number when it is exact as one, else the bigint. */
function exactInteger(value: number | bigint): number | bigint {
  return typeof value === 'bigint' && value >= minSafe && value <= maxSafe ? Number(value) : value
}

/**
 * Runs one prepared statement and shapes its result. Integers come back as numbers, or as
 * bigints beyond 2^53 so that 64-bit values (random(), say) stay exact.
 *
 * `schema`: the node's schema generation, given by a read connection running in autocommit; the
 * statement's columns are then learned once per generation instead of asked on every run.
 */
export function runPrepared(statement: Statement, params: SqlParams | undefined, schema?: SchemaGeneration): RowsResult | ExecResult {
  checkParameters(statement, params)
  const args = bindableArgs(params)
  if (shapeOf(statement) === 'exec') {
    const result = statement.run(...args)
    return { kind: 'exec', rowsAffected: Number(result.changes), lastInsertId: exactInteger(result.lastInsertRowid) }
  }
  const before = schema?.current()
  const values = statement.all(...args) as SqlValue[][]
  const { names, types } = columnsOf(statement, before, schema?.current())
  // Read with bigints, an INTEGER is a bigint and a REAL a number: the classes are known here.
  const firstRowClasses = values.length === 0 ? undefined : values[0]!.map(storageClassOf)
  for (const row of values) {
    for (let i = 0; i < row.length; i++) {
      const value = row[i]
      if (typeof value === 'bigint') row[i] = exactInteger(value)
    }
  }
  return firstRowClasses === undefined ? { kind: 'rows', columns: names, types, values } : { kind: 'rows', columns: names, types, values, firstRowClasses }
}

/** The storage class of a value read with bigints. */
function storageClassOf(value: SqlValue): string {
  if (typeof value === 'bigint') return 'integer'
  if (typeof value === 'number') return 'real'
  if (typeof value === 'string') return 'text'
  return value === null ? '' : 'blob'
}

/** A statement's column names and declared types (lower case), as of one schema generation. */
interface Columns {
  generation: number
  names: string[]
  types: string[]
}

/** Shared by every result of the statement in that generation: read, never changed. */
const knownColumns = new WeakMap<Statement, Columns>()

/**
 * The columns of a statement that just ran, between schema generation readings `before` and
 * `after`. Asked after the rows: a schema change since the last run (an ALTER TABLE the writer
 * committed, say) re-prepares the statement during all(), and `SELECT *` then names other
 * columns; asked before, they would be the old ones beside the new rows. They are kept while the
 * generation stands still, and asked again when it moved, was odd (a schema change was
 * committing) or is unknown (no generation, or an explicit transaction whose snapshot may be
 * older than the generation).
 */
function columnsOf(statement: Statement, before: number | undefined, after: number | undefined): Columns {
  const isSteady = before !== undefined && before === after && before % 2 === 0
  if (isSteady) {
    const known = knownColumns.get(statement)
    if (known !== undefined && known.generation === before) return known
  }
  const columns = statement.columns()
  const names = castStatements.has(statement) ? columns.map((c) => uncastName(c.name)) : columns.map((c) => c.name)
  const asked = { generation: before ?? -1, names, types: columns.map((c) => (c.type ?? '').toLowerCase()) }
  if (isSteady) knownColumns.set(statement, asked)
  return asked
}

/**
 * Whether a statement returns rows, known from its first run, with its read settings made then:
 * each is a call into the binding, and a one-row INSERT costs only a few of those. A statement
 * keeps its kind when SQLite re-prepares it after a schema change (a SELECT has at least one
 * column, an INSERT without RETURNING none). Statements run here are not run with other settings
 * elsewhere: the embedded replica's LocalRows reads on a connection of its own.
 */
const shapes = new WeakMap<Statement, 'rows' | 'exec'>()

function shapeOf(statement: Statement): 'rows' | 'exec' {
  let shape = shapes.get(statement)
  if (shape === undefined) {
    shape = statement.columns().length > 0 ? 'rows' : 'exec'
    statement.setReadBigInts(true)
    if (shape === 'rows') statement.setReturnArrays(true)
    shapes.set(statement, shape)
  }
  return shape
}

/** SQLite's change counters are per connection: after DDL they still hold the last DML's. */
export function withoutCounts(_result: ExecResult): ExecResult {
  return { kind: 'exec', rowsAffected: 0, lastInsertId: 0 }
}

/** rqlite's per-statement error for a read past its db_timeout (and Tandem's --query-timeout). */
export const queryTimeoutError = 'query timeout'
/** rqlite's for a write. */
export const executeTimeoutError = 'execute timeout'

/**
 * Runs a client statement to completion on `connection`. The result of a multi-statement text is
 * that of its last statement. SQL errors come back as an ErrorResult; refusals throw. `schema`:
 * see runPrepared (only for a read connection in autocommit).
 */
export function runClientStatement(
  client: GuardedConnection,
  statement: SqlStatement,
  beforeRun?: (observation: Observation) => void,
  schema?: SchemaGeneration,
): StatementResult {
  const started = performance.now()
  let result: StatementResult | undefined
  try {
    // The common case, one statement, without the generator's cost.
    const split = client.statements.split(statement.sql)
    const parts = split.length === 1 ? [prepareClientPart(client, split[0]!, true, statement.params)] : prepareClientStatements(client, statement.sql, statement.params, split)
    for (const part of parts) {
      beforeRun?.(part.observation)
      result = runPrepared(part.statement, part.isLast ? statement.params : undefined, schema)
      if (part.observation.isDdl && result.kind === 'exec') result = withoutCounts(result)
    }
  } catch (error) {
    if (error instanceof TandemError && error.code !== 'BAD_REQUEST') throw error
    const timeSec = (performance.now() - started) / 1000
    const reason = client.watched?.stopReasonOf(error)
    if (reason === 'cancelled') throw new TandemError('CANCELLED', 'the read was stopped: its client went away')
    if (reason === 'stopping') throw new TandemError('SHUTTING_DOWN', 'the node is stopping')
    if (reason === 'time-limit') return { kind: 'error', error: queryTimeoutError, timeSec }
    if (reason === 'result-too-large') return { kind: 'error', error: resultTooLargeError(), timeSec }
    return { kind: 'error', error: messageOf(error), timeSec }
  }
  result!.timeSec = (performance.now() - started) / 1000
  return result!
}
