import { createHash } from 'node:crypto'
import { quoteIdentifier, userTables } from './schema.ts'
import type { Connection, SqlValue } from './sqlite.ts'

/**
 * A content checksum of every user table and of sqlite_sequence, independent of physical
 * layout: rows are hashed in primary-key order with their values type-tagged, so two nodes
 * agree exactly when their tables hold the same rows. Hidden rowids of tables whose key is not
 * an INTEGER PRIMARY KEY are not replicated by changesets and are left out.
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
    const order = table.primaryKey.length > 0 ? table.primaryKey.map(quoteIdentifier).join(', ') : 'rowid'
    const digest = hashRows(connection.prepare(`SELECT * FROM ${quoteIdentifier(table.name)} ORDER BY ${order}`))
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
