/**
 * Statement results in rqlite's response shapes: zero and empty fields are omitted as rqlite
 * omits them (`{}` for DDL, no `values` for an empty result set, no `time` without `timings`);
 * `types` are the lower-cased declared types, filled from the first row where a column has none;
 * BLOBs are base64 (or byte arrays with `blob_array`), except in text-typed columns where rqlite
 * returns them as text.
 */
import type { RowsResult, SqlValue, StatementResult } from '../storage/index.ts'

export interface FormatOptions {
  associative: boolean
  timings: boolean
  blobArray: boolean
}

const textTypes = /^(?:|text|json|clob|varchar.*|nchar.*|nvarchar.*|varying character.*|native character.*)$/

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
    const { types, values } = formatRows(result, options.blobArray)
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
    const formatted = row.map((value, i) => formatValue(value, types[i] ?? '', blobArray))
    if (rowIndex === 0) formatted.forEach((value, i) => (types[i] = types[i] || typeOfValue(value, classes?.[i])))
    return formatted
  })
  return { types, values }
}

/** The type rqlite names for a formatted value of storage class `storageClass`; '' for NULL. */
function typeOfValue(value: unknown, storageClass: string | undefined): string {
  if (typeof value === 'number') return storageClass === 'real' || (storageClass === undefined && !Number.isInteger(value)) ? 'real' : 'integer'
  if (typeof value === 'bigint') return 'integer'
  if (typeof value === 'string') return 'text'
  if (Array.isArray(value)) return 'blob'
  return ''
}

function formatValue(value: SqlValue, type: string, blobArray: boolean): unknown {
  if (!(value instanceof Uint8Array)) return value
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  // Text first: in a text-typed column rqlite has already turned the bytes into a string, so
  // blob_array never applies there.
  if (textTypes.test(type)) return bytes.toString('utf8')
  if (blobArray) return Array.from(value)
  return bytes.toString('base64')
}
