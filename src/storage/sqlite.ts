/**
 * The only import of a SQLite binding in Tandem, typed as the small subset we call.
 *
 * Two engines answer to it. Tandem's own (native/tandem-sqlite.c, built into build/ by
 * scripts/build-native.js) is used whenever it was built: its sessions capture tables without a
 * PRIMARY KEY by rowid, and it binds numbers and text exactly. The published binding
 * (@photostructure/sqlite, node:sqlite's API) is the fallback on a machine without a C compiler:
 * there, tables without a PRIMARY KEY are refused. `TANDEM_SQLITE=binding` chooses it on purpose.
 * Both are SQLite 3.53 built with the same options, and write the same files.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
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
  /**
   * `allowed`: action codes the callback would always allow. Tandem's engine answers them without
   * calling into JavaScript (a column read is one call each, at every prepare); the binding
   * ignores the list and calls the callback for them too, which answers the same.
   */
  setAuthorizer(callback: AuthorizerCallback | null, allowed?: readonly number[]): void
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

interface NativeModule {
  Database: new (path: string, options: object) => Connection
  Statement: { prototype: object }
  sqliteVersion: string
}

function loadNative(): NativeModule | undefined {
  if (process.env['TANDEM_SQLITE'] === 'binding') return undefined
  const path = new URL('../../build/tandem-sqlite.node', import.meta.url)
  if (!existsSync(path)) return undefined
  const native = createRequire(import.meta.url)(fileURLToPath(path)) as NativeModule
  interface NativeDatabase { limitLength(next?: number): number }
  interface NativeStatement { _bind(...params: unknown[]): void; _step(): unknown; _reset(): void }
  Object.defineProperty(native.Database.prototype, 'limits', {
    get(this: NativeDatabase) {
      const limitLength = this.limitLength.bind(this)
      return {
        get length(): number {
          return limitLength()
        },
        set length(next: number) {
          limitLength(next)
        },
      }
    },
  })
  Object.defineProperty(native.Statement.prototype, 'iterate', {
    value: function iterate(this: NativeStatement, ...params: unknown[]): IterableIterator<unknown> {
      this._bind(...params)
      return rows(this)
    },
  })
  function* rows(statement: NativeStatement): IterableIterator<unknown> {
    try {
      for (let row = statement._step(); row !== undefined; row = statement._step()) yield row
    } finally {
      statement._reset()
    }
  }
  return native
}

const native = loadNative()

/** Which SQLite runs this process, and whether it can replicate tables without a PRIMARY KEY. */
export const engine = {
  name: native === undefined ? 'binding' : 'tandem',
  version: native === undefined ? bindingVersion() : native.sqliteVersion,
  rowidTables: native !== undefined,
  /** Binds numbers, SqlReals and text with NULs exactly as given (exact-values.ts). */
  exactBinding: native !== undefined,
} as const

function bindingVersion(): string {
  const db = new DatabaseSync(':memory:')
  try {
    return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v
  } finally {
    db.close()
  }
}

export function openConnection(path: string, options: OpenOptions = {}): Connection {
  if (native !== undefined) {
    return new native.Database(path, {
      readOnly: options.readOnly ?? false,
      defensive: options.defensive ?? true,
      foreignKeys: options.foreignKeys ?? true,
      timeout: options.busyTimeoutMs ?? 5000,
      allowExtension: options.extensions ?? false,
      ...(options.valueBytesMax === undefined ? {} : { valueBytesMax: options.valueBytesMax }),
    })
  }
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
