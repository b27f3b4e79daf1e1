/**
 * Statement results in rqlite's response shapes: zero and empty fields are omitted as rqlite
 * omits them (`{}` for DDL, no `values` for an empty result set, no `time` without `timings`);
 * `types` are the lower-cased declared types, filled from the first row where a column has none;
 * BLOBs are base64 (or byte arrays with `blob_array`), except in text-typed columns where rqlite
 * returns them as text.
 */
import type { SqlValue, StatementResult } from '../storage/index.ts'

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
    const types = result.types.map((type, i) => (type === '' ? typeOfValue(result.values[0]?.[i]) : type))
    const values = result.values.map((row) => row.map((value, i) => formatValue(value, types[i] ?? '', options.blobArray)))
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

function typeOfValue(value: SqlValue | undefined): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'real'
  if (typeof value === 'bigint') return 'integer'
  if (typeof value === 'string') return 'text'
  if (value instanceof Uint8Array) return 'blob'
  return ''
}

function formatValue(value: SqlValue, type: string, blobArray: boolean): unknown {
  if (!(value instanceof Uint8Array)) return value
  if (blobArray) return Array.from(value)
  if (textTypes.test(type)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')
}
