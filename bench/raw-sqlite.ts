/**
 * The baseline under every write figure: SQLite itself through the same binding Tandem uses
 * (@photostructure/sqlite), with the master's pragmas — WAL, synchronous=FULL — and the same
 * table and rows, in this process, with no replication, no HTTP and no log.
 */
import { DatabaseSync, type DatabaseSyncInstance } from '@photostructure/sqlite'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createTableSql, insertOneSql, payload } from './workload.ts'

function open(dir: string): DatabaseSyncInstance {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const db = new DatabaseSync(join(dir, 'raw.db'))
  db.exec('PRAGMA journal_mode = WAL')
  db.exec('PRAGMA synchronous = FULL')
  db.exec(createTableSql)
  return db
}

/** One-row transactions, back to back, for `durationMs`: transactions per second. */
export function rawSingleRowTps(dir: string, durationMs: number): number {
  const db = open(dir)
  try {
    const insert = db.prepare(insertOneSql)
    let count = 0
    const started = performance.now()
    let elapsed = 0
    while (elapsed < durationMs) {
      db.exec('BEGIN IMMEDIATE')
      insert.run(payload)
      db.exec('COMMIT')
      count++
      elapsed = performance.now() - started
    }
    return count / (elapsed / 1000)
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `rows` rows in transactions of `rowsPerTransaction`: rows per second. */
export function rawBatchedRowsPerSec(dir: string, rows: number, rowsPerTransaction: number): number {
  const db = open(dir)
  try {
    const insert = db.prepare(insertOneSql)
    const started = performance.now()
    for (let written = 0; written < rows; ) {
      db.exec('BEGIN IMMEDIATE')
      const end = Math.min(rows, written + rowsPerTransaction)
      for (; written < end; written++) insert.run(payload)
      db.exec('COMMIT')
    }
    return rows / ((performance.now() - started) / 1000)
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
