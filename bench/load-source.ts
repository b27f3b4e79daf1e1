/**
 * The database the load part (load.ts) loads into both sides, built once per run with the SQLite
 * binding: one table `item` (INTEGER PRIMARY KEY, an account, a timestamp, a title, a random
 * `bodyChars`-character text body) and an index on (account, created), filled 5,000 rows a
 * transaction until the file reaches its target size; a rollback-journal file, whole on disk.
 * And the slice of a dump both sides can load as SQL text (rqlited cannot load a whole one).
 */
import { DatabaseSync } from '@photostructure/sqlite'
import { readFileSync, rmSync } from 'node:fs'

/** count(*), sum(account), sum(length(body)): what a node holding the source's rows answers. */
export const loadSourceAggregateSql = 'SELECT count(*), sum(account), sum(length(body)) FROM item'
const createSql = [
  'CREATE TABLE item (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, created REAL NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL)',
  'CREATE INDEX item_by_account ON item(account, created)',
]
export const bodyChars = 1000
const rowsPerBuildTransaction = 5000

export interface LoadSource {
  file: Buffer
  rows: number
  buildMs: number
  /** loadSourceAggregateSql's row over every row, and over the slice's first rows. */
  whole: unknown[]
  slice: unknown[]
}

/** Builds the database at `path` (replacing any file there) and reads it back whole. */
export function buildLoadSource(path: string, targetBytes: number, sliceRows: number): LoadSource {
  const started = performance.now()
  rmSync(path, { force: true })
  const db = new DatabaseSync(path)
  let built: Omit<LoadSource, 'file' | 'buildMs'>
  try {
    db.exec('PRAGMA journal_mode = OFF')
    db.exec('PRAGMA synchronous = OFF')
    for (const sql of createSql) db.exec(sql)
    const insert = db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rowsPerBuildTransaction}) ` +
        `INSERT INTO item(account, created, title, body) SELECT abs(random()) % 1000, 1.7e9 + (abs(random()) % 100000000) / 4.0, 'item ' || i, hex(randomblob(${bodyChars / 2})) FROM n`,
    )
    const rows = fillToSize(db, insert, targetBytes, rowsPerBuildTransaction)
    if (sliceRows > rows) throw new Error(`the slice (${sliceRows} rows) is larger than the database (${rows} rows)`)
    // A rollback-journal file, whole on disk: what both sides take as a database file.
    db.exec('PRAGMA journal_mode = DELETE')
    const aggregate = (where: string) => Object.values(db.prepare(`${loadSourceAggregateSql}${where}`).get() as Record<string, unknown>)
    built = { rows, whole: aggregate(''), slice: aggregate(` WHERE id <= ${sliceRows}`) }
  } finally {
    db.close()
  }
  return { ...built, file: readFileSync(path), buildMs: performance.now() - started }
}

/**
 * The dump cut to its first `rows` INSERTs, every other line (schema, BEGIN, index, COMMIT)
 * kept; read as bytes, since a dump holds one statement per line when no value holds a newline
 * (none of the source's do).
 */
export function sliceDump(dump: Buffer, rows: number): Buffer {
  const insert = Buffer.from('\nINSERT INTO ')
  let end = dump.indexOf(insert)
  for (let row = 0; row < rows; row++) {
    if (end < 0 || !dump.subarray(end, end + insert.length).equals(insert)) throw new Error(`the dump holds ${row} INSERT lines in a row, fewer than the slice's ${rows}`)
    end = dump.indexOf('\n', end + 1)
  }
  const tail = dump.indexOf('\n', dump.lastIndexOf(insert) + 1)
  return Buffer.concat([dump.subarray(0, end), dump.subarray(tail)])
}

/** Runs `insert` (which adds `rowsPerRun` rows) one transaction at a time until the file holds `targetBytes`; the rows added. */
export function fillToSize(db: InstanceType<typeof DatabaseSync>, insert: { run(): unknown }, targetBytes: number, rowsPerRun: number): number {
  const pageBytes = Number((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size)
  const pages = db.prepare('PRAGMA page_count')
  let rows = 0
  while (Number((pages.get() as { page_count: number }).page_count) * pageBytes < targetBytes) {
    db.exec('BEGIN')
    insert.run()
    db.exec('COMMIT')
    rows += rowsPerRun
  }
  return rows
}
