/**
 * Statement results in rqlite's response shapes: zero and empty fields are omitted as rqlite
 * omits them (`{}` for DDL, no `values` for an empty result set, no `time` without `timings`);
 * `types` are the lower-cased declared types, filled from the first row where a column has none;
 * BLOBs are base64 (or byte arrays with `blob_array`), except in text-typed columns where rqlite
 * returns them as text.
 *
 * rqlite's SQLite driver converts an INTEGER by the column's declared type (lower-cased, exactly):
 * in `boolean` to true when it is > 0, else false; in `date`, `datetime` and `timestamp`, as it
 * does TEXT too, to a time (rqlite-time.ts). REAL, BLOB and NULL values, and TEXT in `boolean`,
 * stay as they are. A time rqlite cannot marshal makes the whole statement an error.
 */
import type { RowsResult, SqlValue, StatementResult } from '../storage/index.ts'
import { exactNumber, isExactNumber } from './json.ts'
import { marshalTime, parseTimeText, timeOfInteger, TimeMarshalError } from './rqlite-time.ts'

export interface FormatOptions {
  associative: boolean
  timings: boolean
  blobArray: boolean
}

const textTypes = /^(?:|text|json|clob|varchar.*|nchar.*|nvarchar.*|varying character.*|native character.*)$/
const timeTypes = new Set(['date', 'datetime', 'timestamp'])

export function formatResult(result: StatementResult, options: FormatOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (result.kind === 'error') {
    if (options.associative) out['rows'] = []
    out['error'] = result.error
  } else if (result.kind === 'exec') {
    if (result.lastInsertId !== 0) out['last_insert_id'] = result.lastInsertId
    if (result.rowsAffected !== 0) out['rows_affected'] = result.rowsAffected
    if (options.associative) out['rows'] = null
  } else {
    let rows: { types: string[]; values: unknown[][] }
    try {
      rows = formatRows(result, options.blobArray)
    } catch (error) {
      if (!(error instanceof TimeMarshalError)) throw error
      // rqlite drops the statement's rows (and its time) for the error, as for a failed query.
      return formatResult({ kind: 'error', error: error.message }, options)
    }
    const { types, values } = rows
    if (options.associative) {
      const typeMap: Record<string, string> = {}
      result.columns.forEach((column, i) => (typeMap[column] = types[i] ?? ''))
      if (result.columns.length > 0) out['types'] = typeMap
      out['rows'] = values.map((row) => {
        const object: Record<string, unknown> = {}
        result.columns.forEach((column, i) => (object[column] = row[i]))
        return object
      })
    } else if (result.columns.length > 0) {
      out['columns'] = result.columns
      out['types'] = types
      if (values.length > 0) out['values'] = values
    }
  }
  if (options.timings && result.timeSec !== undefined) out['time'] = result.timeSec
  return out
}

/**
 * rqlite's order (db.go queryStmtWithConn): the first row is formatted with the declared types,
 * then the empty types are filled from that formatted row, and later rows use the filled types.
 * So a BLOB in a column without a declared type (an expression) comes back as text typed "text",
 * not as base64 typed "blob".
 */
function formatRows(result: RowsResult, blobArray: boolean): { types: string[]; values: unknown[][] } {
  const types = [...result.types]
  const classes = result.firstRowClasses
  const values = result.values.map((row, rowIndex) => {
    // The declared types that convert are never empty, so filling the empty ones changes none.
    const formatted = row.map((value, i) => formatValue(value, types[i] ?? '', blobArray, rowIndex === 0 ? classes?.[i] : undefined))
    if (rowIndex === 0) formatted.forEach((value, i) => (types[i] = types[i] || typeOfValue(value, classes?.[i])))
    return formatted
  })
  return { types, values }
}

/** The type rqlite names for a formatted value of storage class `storageClass`; '' for NULL. */
function typeOfValue(value: unknown, storageClass: string | undefined): string {
  if (typeof value === 'number') return storageClass === 'real' || (storageClass === undefined && !Number.isInteger(value)) ? 'real' : 'integer'
  if (typeof value === 'bigint') return 'integer'
  if (typeof value === 'string') return isExactNumber(value) ? 'real' : 'text'
  if (Array.isArray(value)) return 'blob'
  return ''
}

/** `storageClass`: the value's, where known (row 0 only). */
function formatValue(value: SqlValue, type: string, blobArray: boolean, storageClass: string | undefined): unknown {
  if (!(value instanceof Uint8Array)) {
    if (value === null) return value
    if (type === 'boolean') return isInteger(value, storageClass) ? value > 0 : value
    if (timeTypes.has(type)) {
      if (typeof value === 'string') return marshalTime(parseTimeText(value))
      if (isInteger(value, storageClass)) return marshalTime(timeOfInteger(value))
    }
    // JSON.stringify writes ±Infinity as null and -0 as 0: written as numbers that read back as themselves.
    if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) return exactNumber(value)
    return value
  }
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  // Text first: in a text-typed column rqlite has already turned the bytes into a string, so
  // blob_array never applies there.
  if (textTypes.test(type)) return bytes.toString('utf8')
  if (blobArray) return Array.from(value)
  return bytes.toString('base64')
}

/**
 * Whether a value read back was an INTEGER (the driver converts those, and leaves REALs alone). A
 * bigint was. A number was when it is a safe integer other than -0: an INTEGER past 2^53 is read
 * as a bigint, so a larger number is a REAL. Row 0's storage class, when known, settles it.
 *
 * Limitation: past row 0 an integral REAL within 2^53 is taken as an INTEGER. A stored value
 * hardly ever is one (these declared types have NUMERIC affinity, which stores an integral REAL
 * as an INTEGER), but a compound SELECT can mix them in: in `SELECT b FROM t UNION ALL SELECT 1.0`
 * with b BOOLEAN, rqlite answers the second row's 1.0 as 1 and this as true. Per-value storage
 * classes would close the gap.
 */
function isInteger(value: number | bigint | string, storageClass: string | undefined): value is number | bigint {
  if (typeof value === 'bigint') return true
  if (typeof value === 'string' || storageClass === 'real') return false
  return Number.isSafeInteger(value) && !Object.is(value, -0)
}
