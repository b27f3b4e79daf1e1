/**
 * The only import of the SQLite binding in Tandem, typed as the small subset we call, so that
 * moving to Node's built-in `node:sqlite` (same API, Node ≥ 22) is a change to this file alone.
 */
import { DatabaseSync, constants } from '@photostructure/sqlite'

export type SqlValue = null | number | bigint | string | Uint8Array
/** A REAL with an integral value (`1.0`): a number would bind as an INTEGER (exact-values.ts). */
export type SqlReal = Float64Array
/** A value a client statement binds: any SqlValue, or a REAL that must stay one. */
export type SqlParam = SqlValue | SqlReal
export type SqlParams = readonly SqlParam[] | Readonly<Record<string, SqlParam>>
/** Parameters as an application gives them (the embedded replica's API): values only. */
export type ValueParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>

export interface RunResult {
  changes: number | bigint
  lastInsertRowid: number | bigint
}

export interface ColumnInfo {
  name: string
  type: string | null
}

export interface Statement {
  run(...params: unknown[]): RunResult
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
  iterate(...params: unknown[]): IterableIterator<unknown>
  columns(): ColumnInfo[]
  setReadBigInts(enabled: boolean): void
  setReturnArrays(enabled: boolean): void
}

export interface Session {
  changeset(): Uint8Array
  close(): void
}

export interface Connection {
  readonly isOpen: boolean
  readonly isTransaction: boolean
  prepare(sql: string): Statement
  exec(sql: string): void
  close(): void
  createSession(): Session
  applyChangeset(changeset: Uint8Array, options: { onConflict: (kind: number) => number }): boolean
  setAuthorizer(callback: AuthorizerCallback | null): void
  /** SQLite's run-time limits; `length` is SQLITE_LIMIT_LENGTH (largest string, BLOB or row). */
  readonly limits: { length: number }
  /** Only on a connection opened with `extensions` (statement-limits.ts loads Tandem's own). */
  enableLoadExtension(enable: boolean): void
  loadExtension(path: string, entryPoint: string): void
}

/** (action, arg1, arg2, database, trigger-or-view) → one of `auth` below. */
export type AuthorizerCallback = (
  action: number,
  arg1: string | null,
  arg2: string | null,
  database: string | null,
  trigger: string | null,
) => number

export interface OpenOptions {
  readOnly?: boolean
  /** Off only on a replica's apply connection: FTS5 shadow tables must be writable there. */
  defensive?: boolean
  /** Off only on a replica's apply connection: the master already ran the foreign-key actions. */
  foreignKeys?: boolean
  busyTimeoutMs?: number
  /**
   * SQLITE_LIMIT_LENGTH: the largest string, BLOB or row, in bytes. Set on every connection that
   * runs client SQL (shared/limits.ts says why); internal connections keep SQLite's default.
   * Reading a stored value larger than it fails too, so readers take the same limit as writers.
   */
  valueBytesMax?: number
  /**
   * Lets Tandem load its own SQLite extension (statement-limits.ts) through the C API, which it
   * turns off again right after. SQL's load_extension() stays disabled whatever this says.
   */
  extensions?: boolean
}

export function openConnection(path: string, options: OpenOptions = {}): Connection {
  const db = new DatabaseSync(path, {
    readOnly: options.readOnly ?? false,
    defensive: options.defensive ?? true,
    enableForeignKeyConstraints: options.foreignKeys ?? true,
    timeout: options.busyTimeoutMs ?? 5000,
    allowExtension: options.extensions ?? false,
    allowBareNamedParameters: true,
    // rqlite clients may send more named values than a statement uses; rqlite ignores them.
    allowUnknownNamedParameters: true,
    ...(options.valueBytesMax === undefined ? {} : { limits: { length: options.valueBytesMax } }),
  })
  return db
}

export const auth = {
  OK: constants.SQLITE_OK,
  DENY: constants.SQLITE_DENY,
  IGNORE: constants.SQLITE_IGNORE,
} as const

/** Authorizer action codes (sqlite3.h). */
export const action = {
  CREATE_INDEX: 1,
  CREATE_TABLE: 2,
  CREATE_TEMP_INDEX: 3,
  CREATE_TEMP_TABLE: 4,
  CREATE_TEMP_TRIGGER: 5,
  CREATE_TEMP_VIEW: 6,
  CREATE_TRIGGER: 7,
  CREATE_VIEW: 8,
  DELETE: 9,
  DROP_INDEX: 10,
  DROP_TABLE: 11,
  DROP_TEMP_INDEX: 12,
  DROP_TEMP_TABLE: 13,
  DROP_TEMP_TRIGGER: 14,
  DROP_TEMP_VIEW: 15,
  DROP_TRIGGER: 16,
  DROP_VIEW: 17,
  INSERT: 18,
  PRAGMA: 19,
  READ: 20,
  SELECT: 21,
  TRANSACTION: 22,
  UPDATE: 23,
  ATTACH: 24,
  DETACH: 25,
  ALTER_TABLE: 26,
  REINDEX: 27,
  ANALYZE: 28,
  CREATE_VTABLE: 29,
  DROP_VTABLE: 30,
  FUNCTION: 31,
  SAVEPOINT: 32,
  RECURSIVE: 33,
} as const

export const changesetConflict = {
  ABORT: constants.SQLITE_CHANGESET_ABORT,
} as const

/** The SQLite error fields the binding attaches to thrown errors. */
export function sqliteErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'sqliteCodeName' in error) {
    const name = (error).sqliteCodeName
    return typeof name === 'string' ? name : undefined
  }
  return undefined
}

/**
 * Did SQLite find the database file damaged (SQLITE_CORRUPT, SQLITE_NOTADB)? The binding sets
 * `errcode` on some errors only, so SQLite's messages for the two codes count too.
 */
export function isCorruption(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { errcode?: unknown }).errcode
  if (typeof code === 'number' && ((code & 0xff) === 11 || (code & 0xff) === 26)) return true
  const message = (error as { message?: unknown }).message
  return typeof message === 'string' && /database disk image is malformed|file is not a database/.test(message)
}
