import { createHash } from 'node:crypto'
import { quoteIdentifier, rowidColumn, userTables } from './schema.ts'
import type { Connection, SqlValue } from './sqlite.ts'

/**
 * A content checksum of every user table and of sqlite_sequence, independent of physical
 * layout: rows are hashed in key order with their values type-tagged, so two nodes agree exactly
 * when their tables hold the same rows. A table without a PRIMARY KEY is keyed by its rowid, and
 * the rowid is hashed with the row (it is what changesets name the row by). The hidden rowids of
 * tables whose key is another PRIMARY KEY are not replicated and are left out.
 *
 * Call inside a read transaction to pair the checksum with a position.
 */
export interface Checksum {
  checksum: string
  tables: Record<string, string>
}

export function checksumTables(connection: Connection): Checksum {
  const tables: Record<string, string> = {}
  const total = createHash('sha256')
  for (const table of userTables(connection)) {
    const rowid = table.primaryKey.length === 0 ? `${rowidColumn}, ` : ''
    const digest = hashRows(connection.prepare(`SELECT ${rowid}* FROM ${quoteIdentifier(table.name)} ORDER BY ${table.key.map(quoteIdentifier).join(', ')}`))
    tables[table.name] = digest
    total.update(`${table.name}\0${digest}\0`)
  }
  const hasSequence = connection.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'`).get() !== undefined
  if (hasSequence) {
    const digest = hashRows(connection.prepare('SELECT name, seq FROM sqlite_sequence ORDER BY name'))
    tables['sqlite_sequence'] = digest
    total.update(`sqlite_sequence\0${digest}\0`)
  }
  return { checksum: total.digest('hex'), tables }
}

function hashRows(statement: ReturnType<Connection['prepare']>): string {
  const hash = createHash('sha256')
  statement.setReturnArrays(true)
  statement.setReadBigInts(true)
  for (const row of statement.iterate() as IterableIterator<SqlValue[]>) {
    for (const value of row) hashValue(hash, value)
    hash.update('\n')
  }
  return hash.digest('hex')
}

function hashValue(hash: ReturnType<typeof createHash>, value: SqlValue): void {
  if (value === null) hash.update('n;')
  else if (typeof value === 'bigint') hash.update(`i${value};`)
  else if (typeof value === 'number') hash.update(`r${value};`)
  else if (typeof value === 'string') hash.update(`t${value.length}:${value};`)
  else {
    hash.update(`b${value.length}:`)
    hash.update(value)
    hash.update(';')
  }
}

/** A primary-key value as JSON, exact: integers as strings, BLOBs as hex. */
type KeyValue = { i: string } | { r: number } | { t: string } | { b: string } | null

/** One check of a key range of a table (anti-entropy): `(afterKey, lastKey]` in key order. */
export interface RangeChecksum {
  table: string
  /** JSON of the key the range starts after; null: the table's start. */
  afterKey: string | null
  /** JSON of the range's last key; null: to the table's end. */
  lastKey: string | null
  rows: number
  digest: string
}

function encodeKey(values: readonly SqlValue[]): string {
  return JSON.stringify(
    values.map((v): KeyValue => {
      if (v === null) return null
      if (typeof v === 'bigint') return { i: v.toString() }
      if (typeof v === 'number') return Number.isInteger(v) ? { i: String(v) } : { r: v }
      if (typeof v === 'string') return { t: v }
      return { b: Buffer.from(v).toString('hex') }
    }),
  )
}

function decodeKey(json: string): SqlValue[] {
  return (JSON.parse(json) as KeyValue[]).map((v) => {
    if (v === null) return null
    if ('i' in v) return BigInt(v.i)
    if ('r' in v) return v.r
    if ('t' in v) return v.t
    return new Uint8Array(Buffer.from(v.b, 'hex'))
  })
}

/**
 * The checksum of the rows of `table` whose keys lie in `(afterKey, lastKey]` (JSON from a
 * RangeChecksum), hashed as checksumTables() hashes them. With `rowsMax` instead of `lastKey`,
 * the range is the next `rowsMax` rows after `afterKey` (lastKey null: it reached the end).
 */
export function checksumRange(connection: Connection, table: string, afterKey: string | null, bound: { lastKey: string | null } | { rowsMax: number }): RangeChecksum {
  const info = userTables(connection).find((t) => t.name === table)
  if (info === undefined) return { table, afterKey, lastKey: null, rows: 0, digest: '' }
  const keys = `(${info.key.map(quoteIdentifier).join(', ')})`
  const marks = `(${info.key.map(() => '?').join(', ')})`
  const params: SqlValue[] = []
  const where: string[] = []
  if (afterKey !== null) {
    where.push(`${keys} > ${marks}`)
    params.push(...decodeKey(afterKey))
  }
  if ('lastKey' in bound && bound.lastKey !== null) {
    where.push(`${keys} <= ${marks}`)
    params.push(...decodeKey(bound.lastKey))
  }
  const limit = 'rowsMax' in bound ? ` LIMIT ${Math.max(1, Math.floor(bound.rowsMax))}` : ''
  const order = info.key.map(quoteIdentifier).join(', ')
  const statement = connection.prepare(`SELECT ${order}, * FROM ${quoteIdentifier(table)}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order}${limit}`)
  statement.setReturnArrays(true)
  statement.setReadBigInts(true)
  const hash = createHash('sha256')
  let rows = 0
  let last: SqlValue[] | undefined
  const keyCount = info.key.length
  // A rowid is not among a table's columns: hash it as checksumTables() does.
  const hashedFrom = info.primaryKey.length === 0 ? 0 : keyCount
  for (const row of statement.iterate(...params) as IterableIterator<SqlValue[]>) {
    for (let i = hashedFrom; i < row.length; i++) hashValue(hash, row[i]!)
    hash.update('\n')
    last = row.slice(0, keyCount)
    rows++
  }
  const reachedEnd = !('rowsMax' in bound) || rows < bound.rowsMax
  const lastKey = 'lastKey' in bound ? bound.lastKey : reachedEnd || last === undefined ? null : encodeKey(last)
  return { table, afterKey, lastKey, rows, digest: hash.digest('hex') }
}
