/**
 * What calls return, and how rqlite's result shapes become them. Rows are objects keyed by
 * column name, built here from `columns` and `values` (rather than asking for `associative`)
 * so the column order survives and `columns` lists duplicates as SQLite named them. BLOBs are
 * requested as byte arrays (`blob_array`) and returned as Uint8Array: a JSON array can only be a
 * BLOB, whereas base64 text cannot be told from a TEXT value.
 */
import { TandemClientError } from './client-errors.ts'

/** A value read from SQLite. Integers beyond 2^53 arrive as bigint. */
export type Value = null | number | bigint | string | Uint8Array

/** A row as an object keyed by column name. */
export type Row = Record<string, Value>

/**
 * The rows of a query: an array of row objects, with where and when they were read. The extra
 * properties are not enumerable, so the array compares and serializes as a plain array.
 */
export interface Rows<R> extends Array<R> {
  /** Column names, in order. */
  readonly columns: string[]
  /** Declared column types, lower-cased ('' when SQLite knows none). */
  readonly types: string[]
  /** The LSN the serving node had applied when it read (X-Tandem-Lsn). */
  readonly lsn: number
  /** The URL of the node that served the read. */
  readonly node: string
}

/** The outcome of one statement of a write request. */
export interface StatementResult {
  rowsAffected: number
  /** 0 when the statement inserted no row. */
  lastInsertId: number | bigint
  /** Present when the statement returned rows (a SELECT or RETURNING). */
  rows?: Row[]
}

/** A statement that failed, in the per-statement results of a SqlError. */
export interface StatementFailure {
  error: string
}

export interface SyncState {
  /** Replicas that had to confirm the write. */
  required: number
  /** Replicas that confirmed it in time. */
  confirmed: number
}

/** What every acknowledged write carries. */
export interface WriteAck {
  /** The LSN of the log entry that holds the write. */
  lsn: number
  /** The master that committed it. */
  node: string
  /** True when the master answered from an earlier run of the same idempotency key. */
  replayed: boolean
  /** Present when the write asked for synchronous replication. */
  sync?: SyncState
}

export interface ExecResult extends WriteAck, StatementResult {}

export interface BatchResult extends WriteAck {
  /** One per statement, in order. */
  results: StatementResult[]
}

export interface TxResult<T> extends BatchResult {
  /** What the transaction's callback returned. */
  value: T
}

/** The JSON of one statement result as rqlite shapes it. */
interface RawResult {
  error?: unknown
  rows_affected?: unknown
  last_insert_id?: unknown
  columns?: unknown
  types?: unknown
  values?: unknown
}

export function decodeStatementResult(raw: unknown, node: string): StatementResult | StatementFailure {
  if (typeof raw !== 'object' || raw === null) throw badResponse(node, 'a statement result is not an object')
  const r = raw as RawResult
  if (r.error !== undefined) return { error: textOf(r.error) }
  const result: StatementResult = { rowsAffected: Number(integer(r.rows_affected, node)), lastInsertId: integer(r.last_insert_id, node) }
  if (Array.isArray(r.columns)) result.rows = decodeRows(r, node).rows
  return result
}

/** Rows of a query result, with its column names and types. */
export function decodeRows(raw: unknown, node: string): { rows: Row[]; columns: string[]; types: string[] } {
  if (typeof raw !== 'object' || raw === null) throw badResponse(node, 'a query result is not an object')
  const r = raw as RawResult
  const columns = Array.isArray(r.columns) ? r.columns.map(String) : []
  const types = Array.isArray(r.types) ? r.types.map(String) : columns.map(() => '')
  const values = r.values === undefined ? [] : r.values
  if (!Array.isArray(values)) throw badResponse(node, 'values is not an array')
  const rows = values.map((tuple: unknown) => {
    if (!Array.isArray(tuple) || tuple.length !== columns.length) throw badResponse(node, 'a row does not match its columns')
    const row: Row = {}
    columns.forEach((column, i) => (row[column] = decodeValue(tuple[i], node)))
    return row
  })
  return { rows, columns, types }
}

export function makeRows<R>(rows: Row[], meta: { columns: string[]; types: string[]; lsn: number; node: string }): Rows<R> {
  const hidden = (value: unknown) => ({ value, enumerable: false, writable: false, configurable: false })
  return Object.defineProperties(rows, {
    columns: hidden(meta.columns),
    types: hidden(meta.types),
    lsn: hidden(meta.lsn),
    node: hidden(meta.node),
  }) as unknown as Rows<R>
}

/** A server's error message as text, whatever JSON it came as. */
export function textOf(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

function decodeValue(value: unknown, node: string): Value {
  if (value === null || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') return value
  if (Array.isArray(value)) return Uint8Array.from(value as number[])
  throw badResponse(node, `unexpected value ${JSON.stringify(value)}`)
}

function integer(value: unknown, node: string): number | bigint {
  if (value === undefined) return 0
  if ((typeof value === 'number' && Number.isInteger(value)) || typeof value === 'bigint') return value
  throw badResponse(node, `expected an integer, got ${JSON.stringify(value)}`)
}

export function badResponse(node: string, what: string): TandemClientError {
  return new TandemClientError('BAD_RESPONSE', `the node at ${node} sent a response this client cannot read: ${what}`, { node })
}
