/**
 * The embedded replica's reads: client SQL on a read-only connection to the local file, under
 * the same SQL policy as every node's client connection, returning rows as objects.
 *
 * Why not node/local-reads.ts: LocalReads answers HTTP requests in rqlite's shape (column names
 * plus arrays of values, a result per statement, timings), which costs a generator, a result
 * object and a copy per call. An application reading in-process wants the binding's own row
 * objects from a statement prepared once: this is the path that makes a point read cost about
 * what raw SQLite costs. The policy, the refusals and the read-only connection are the same
 * (storage's openReader and prepareClientStatements).
 */
import { SqlError, TandemClientError } from '../client/index.ts'
import { messageOf } from '../shared/errors.ts'
import { bindableArgs, castSql, checkParameters, openReader, prepareClientStatements, type GuardedConnection, type SqlParams, type SqlValue, type Statement } from '../storage/index.ts'
import { asClientError } from './as-client-error.ts'

/** A row as the binding returns it: column name → value, on a null prototype. */
export type Row = Record<string, SqlValue>

const minSafe = BigInt(Number.MIN_SAFE_INTEGER)
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER)

export class LocalRows {
  private readonly reader: GuardedConnection
  /** Prepared reads by SQL text, oldest first out. Invariant: every one was observed not to write. */
  private readonly prepared = new Map<string, Statement>()
  private readonly preparedMax: number
  /** The replica's URL in the cluster (`embedded://…`), the `node` of its SqlErrors. */
  private readonly node: string

  constructor(path: string, node: string, preparedMax = 256) {
    this.reader = openReader(path)
    this.node = node
    this.preparedMax = preparedMax
  }

  all<T = Row>(sql: string, params?: SqlParams): T[] {
    const statement = this.statementFor(sql, params)
    this.checkParameters(statement, params)
    try {
      return statement.all(...bindableArgs(params)) as T[]
    } catch (error) {
      return this.again(statement, params, error, (s, args) => s.all(...args)) as T[]
    }
  }

  get<T = Row>(sql: string, params?: SqlParams): T | undefined {
    const statement = this.statementFor(sql, params)
    this.checkParameters(statement, params)
    try {
      return statement.get(...bindableArgs(params)) as T | undefined
    } catch (error) {
      return this.again(statement, params, error, (s, args) => s.get(...args)) as T | undefined
    }
  }

  close(): void {
    this.prepared.clear()
    this.reader.connection.close()
  }

  /** The statement prepared for `sql` run with `params` (which may change its text: exact-values.ts). */
  private statementFor(sql: string, params: SqlParams | undefined): Statement {
    const key = castSql(sql, params)
    const cached = this.prepared.get(key)
    if (cached !== undefined) return cached
    let parts
    try {
      parts = [...prepareClientStatements(this.reader, sql, params)]
    } catch (error) {
      throw this.failure(error)
    }
    const [part] = parts
    if (part === undefined || parts.length > 1) {
      throw new TandemClientError('BAD_REQUEST', `a read runs one statement; this text holds ${parts.length}`)
    }
    if (part.observation.isWrite) {
      throw new TandemClientError('NOT_MASTER', 'this statement writes, and the embedded replica is read-only: send it to the master with execute()')
    }
    part.statement.setReadBigInts(false)
    part.statement.setReturnArrays(false)
    this.prepared.set(key, part.statement)
    if (this.prepared.size > this.preparedMax) this.prepared.delete(this.prepared.keys().next().value!)
    return part.statement
  }

  /**
   * The slow path after a read threw. An integer beyond 2^53 cannot be a number: read the
   * statement again with bigints (nothing can change in between, reads and applies share this
   * thread) and keep the values that fit as numbers, as the HTTP API does. Anything else is the
   * statement's SQL error.
   */
  private again(statement: Statement, params: SqlParams | undefined, error: unknown, run: (s: Statement, args: unknown[]) => unknown): unknown {
    if ((error as { code?: unknown }).code !== 'ERR_OUT_OF_RANGE') throw this.failure(error)
    const args = bindableArgs(params)
    statement.setReadBigInts(true)
    try {
      const result = run(statement, args)
      if (Array.isArray(result)) for (const row of result) narrowIntegers(row as Row)
      else if (result !== undefined) narrowIntegers(result as Row)
      return result
    } catch (retryError) {
      throw this.failure(retryError)
    } finally {
      statement.setReadBigInts(false)
    }
  }

  /** A missing or extra parameter is the statement's SQL error, as over HTTP (the binding would bind NULL). */
  private checkParameters(statement: Statement, params: SqlParams | undefined): void {
    try {
      checkParameters(statement, params)
    } catch (error) {
      throw this.sqlError(error)
    }
  }

  /** A refusal by the SQL policy keeps its code; anything else the binding threw is the statement's SQL error. */
  private failure(error: unknown): unknown {
    const refusal = asClientError(error)
    if (refusal instanceof TandemClientError) return refusal
    return this.sqlError(error)
  }

  private sqlError(error: unknown): SqlError {
    const message = messageOf(error)
    return new SqlError(message, { statementIndex: 0, results: [{ error: message }], rolledBack: false, lsn: undefined, node: this.node, cause: error })
  }
}

function narrowIntegers(row: Row): void {
  for (const key in row) {
    const value = row[key]
    if (typeof value === 'bigint' && value >= minSafe && value <= maxSafe) row[key] = Number(value)
  }
}
