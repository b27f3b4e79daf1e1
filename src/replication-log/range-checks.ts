/**
 * Anti-entropy: the master checks its tables a key range at a time, and every replica checks the
 * same range of its own copy at the same LSN. A check travels in the log, so "at the same LSN"
 * is exact: the master computes the checksum of the next `rowsMax` rows of one table (after the
 * key where the previous check stopped, table after table) inside an entry of its own, and
 * records it in `_tandem_checks`; a replica applying that entry computes the same range of its
 * own table right after it, in the same transaction, and a difference is divergence: the replica
 * resyncs from a snapshot. So a byte changed in a replica's file is found within one round of
 * checks over the tables (rows ÷ rowsMax + tables checks, one every --check-interval), even in
 * rows the master never writes again.
 *
 * Cost: one range of rowsMax rows read on every node per check; the master's runs in the write
 * pipeline as an entry of its own (~1 ms for 1,000 rows).
 */
import { checksumRange, quoteIdentifier, userTables, type Connection, type Op } from '../storage/index.ts'

export const checksTable = '_tandem_checks'

const schema = `CREATE TABLE IF NOT EXISTS ${checksTable} (
  id INTEGER PRIMARY KEY, table_name TEXT NOT NULL, after_key TEXT, last_key TEXT, rows INTEGER NOT NULL, digest TEXT NOT NULL
)`

/** Creates the checks table; every node, on its writing connection, before it writes or applies. */
export function ensureChecksSchema(connection: Connection, internally: <T>(fn: () => T) => T = (fn) => fn()): void {
  internally(() => connection.exec(schema))
}

/** The checks kept: older ones are deleted by the check that follows them. */
const checksKept = 16

/** The master's side: where the next check starts. */
export class RangeChecks {
  private tableIndex = 0
  private afterKey: string | null = null
  private readonly rowsMax: number

  constructor(rowsMax: number) {
    this.rowsMax = rowsMax
  }

  /** Checks the next range and records it; run as an internal write alone in its entry. */
  record(connection: Connection): void {
    const tables = userTables(connection)
    if (tables.length === 0) return
    const table = tables[this.tableIndex % tables.length]!.name
    const check = checksumRange(connection, table, this.afterKey, { rowsMax: this.rowsMax })
    connection
      .prepare(`INSERT INTO ${checksTable}(table_name, after_key, last_key, rows, digest) VALUES (?, ?, ?, ?, ?)`)
      .run(check.table, check.afterKey, check.lastKey, check.rows, check.digest)
    connection.prepare(`DELETE FROM ${checksTable} WHERE id <= (SELECT max(id) FROM ${checksTable}) - ?`).run(checksKept)
    if (check.lastKey === null) {
      this.tableIndex = (this.tableIndex + 1) % tables.length
      this.afterKey = null
    } else this.afterKey = check.lastKey
  }
}

/** Is this entry's only change a check (the entry the master wrote with RangeChecks.record)? */
export function isCheckEntry(ops: readonly Op[]): boolean {
  const only = ops.length === 1 ? ops[0] : undefined
  return only?.kind === 'changeset' && firstTableOf(only.bytes) === checksTable
}

/**
 * The name of the first table in a changeset: `'T'`, the column count (a varint), one byte per
 * column, then the name, NUL-terminated (SQLite's changeset format).
 */
function firstTableOf(bytes: Uint8Array): string | undefined {
  if (bytes[0] !== 0x54) return undefined
  let at = 1
  let columns = 0
  for (let shift = 0; at < bytes.length; shift += 7) {
    const byte = bytes[at++]!
    columns |= (byte & 0x7f) << shift
    if ((byte & 0x80) === 0) break
  }
  at += columns
  const end = bytes.indexOf(0, at)
  return end < 0 ? undefined : Buffer.from(bytes.subarray(at, end)).toString('utf8')
}

/**
 * A replica, right after applying a check entry: the newest check against its own rows. Returns
 * what differs, or undefined when they agree.
 */
export function verifyNewestCheck(connection: Connection): string | undefined {
  const check = connection.prepare(`SELECT table_name, after_key, last_key, rows, digest FROM ${checksTable} ORDER BY id DESC LIMIT 1`).get() as
    | { table_name: string; after_key: string | null; last_key: string | null; rows: number; digest: string }
    | undefined
  if (check === undefined) return undefined
  const own = checksumRange(connection, check.table_name, check.after_key, { lastKey: check.last_key })
  if (own.rows === check.rows && own.digest === check.digest) return undefined
  const range = `after ${check.after_key ?? 'the start'} up to ${check.last_key ?? 'the end'}`
  return `anti-entropy: table ${quoteIdentifier(check.table_name)}, keys ${range}: ${own.rows} rows here and ${check.rows} on the master, with different checksums`
}
