/**
 * A query's answer from a local SQLite connection, and its differences from a node's answer
 * read with lossless-json (numbers keep their spelling), value for value:
 *
 * - an INTEGER (read locally as a bigint) must come back written as that exact integer;
 * - a REAL (a number) as text that parses to the same double; JSON writes -0 as 0, so the two
 *   zeros are equal, and an integral REAL may be written without a fraction (`2`), as rqlite does.
 *   An infinite REAL (`1e308 * 10`) has no JSON number, but text such as `1e999` parses to it;
 *   null is a difference (it reads as NULL, and the value is lost), and so is an error;
 * - TEXT as the same string, NULL as null;
 * - `types[i]`: the declared type in lower case, or, for a column without one, the storage class
 *   of the first row's value ('integer', 'real', 'text'; '' for NULL or no rows), as rqlite types it.
 */
import { isLosslessNumber } from 'lossless-json'
import type { Connection } from '../../src/storage/sqlite.ts'

/** What the local connection reads, with bigints for INTEGERs. */
export type LocalValue = null | bigint | number | string | Uint8Array

export interface Answer {
  columns: string[]
  types: string[]
  rows: LocalValue[][]
}

/** A node's result for one statement, as lossless-json parses it. */
export interface NodeResult {
  columns?: string[]
  types?: string[]
  values?: unknown[][]
  error?: string
}

export function localAnswer(connection: Connection, sql: string): Answer {
  const statement = connection.prepare(sql)
  statement.setReadBigInts(true)
  statement.setReturnArrays(true)
  const rows = statement.all() as LocalValue[][]
  const columns = statement.columns()
  return {
    columns: columns.map((c) => c.name),
    types: columns.map((c, i) => (c.type ?? '').toLowerCase() || storageClass(rows[0]?.[i] ?? null)),
    rows,
  }
}

function storageClass(value: LocalValue): string {
  if (typeof value === 'bigint') return 'integer'
  if (typeof value === 'number') return 'real'
  if (typeof value === 'string') return 'text'
  return value === null ? '' : 'blob'
}

export function isSameValue(want: LocalValue, got: unknown): boolean {
  if (want === null || typeof want === 'string') return got === want
  if (!isLosslessNumber(got)) return false
  if (typeof want === 'bigint') return /^-?\d+$/.test(got.value) && BigInt(got.value) === want
  // === holds for 0 and -0 alike.
  if (typeof want === 'number') return Number(got.value) === want
  return false // a BLOB: the corpus makes none, and one here is a mistake in it
}

/** A local value as a reader of a failure wants to see it: its class and its exact value. */
export function showLocal(value: LocalValue): string {
  if (value === null) return 'NULL'
  if (typeof value === 'bigint') return `INTEGER ${value}`
  if (typeof value === 'number') return `REAL ${Object.is(value, -0) ? '-0.0' : String(value)}`
  if (typeof value === 'string') return `TEXT ${JSON.stringify(value)}`
  return `BLOB ${Buffer.from(value).toString('hex')}`
}

/** A node's value as its JSON wrote it. */
export function showNode(value: unknown): string {
  if (isLosslessNumber(value)) return `number ${value.value}`
  return value === undefined ? 'nothing' : JSON.stringify(value)
}

/** How `got` differs from `want`, at most `countMax` lines; none when they are the same. */
export function differences(want: Answer, got: NodeResult | undefined, countMax = 3): string[] {
  if (got === undefined) return ['no result']
  if (got.error !== undefined) return [`error ${JSON.stringify(got.error)}, SQLite answered ${want.rows.length} rows`]
  const found: string[] = []
  const columns = got.columns ?? []
  if (columns.length !== want.columns.length || columns.some((c, i) => c !== want.columns[i])) {
    return [`columns ${JSON.stringify(columns)}, SQLite ${JSON.stringify(want.columns)}`]
  }
  want.types.forEach((type, i) => {
    if (got.types?.[i] !== type) found.push(`column ${i + 1} typed ${JSON.stringify(got.types?.[i])}, SQLite's first row ${JSON.stringify(type)}`)
  })
  const rows = got.values ?? []
  if (rows.length !== want.rows.length) found.push(`${rows.length} rows, SQLite ${want.rows.length}`)
  for (let r = 0; r < Math.min(rows.length, want.rows.length) && found.length < countMax; r++) {
    const row = rows[r]!
    const wantRow = want.rows[r]!
    if (row.length !== wantRow.length) found.push(`row ${r + 1} has ${row.length} values, SQLite ${wantRow.length}`)
    wantRow.forEach((value, c) => {
      if (!isSameValue(value, row[c])) found.push(`row ${r + 1} column ${c + 1}: ${showNode(row[c])}, SQLite ${showLocal(value)}`)
    })
  }
  return found.slice(0, countMax)
}
