/**
 * The rows every measurement writes, so Tandem and raw SQLite do exactly the same work: one
 * table with an INTEGER PRIMARY KEY (rowid) and a 32-character text payload.
 */
export const createTableSql = 'CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)'

export const payload = 'tandem-bench-payload-0123456789a'

export const insertOneSql = 'INSERT INTO bench(payload) VALUES (?)'

/** One row per request: the rqlite body for POST /db/execute. */
export const insertOneBody = JSON.stringify([[insertOneSql, payload]])

/** `rows` rows in one statement (one transaction, one log entry). */
export function insertManySql(rows: number): string {
  return `INSERT INTO bench(payload) VALUES ${Array.from({ length: rows }, () => '(?)').join(', ')}`
}

export function insertManyBody(rows: number): string {
  return JSON.stringify([[insertManySql(rows), ...Array.from({ length: rows }, () => payload)]])
}
