/**
 * The embedded replica: a replica of a Tandem cluster inside the application's process. Reads
 * run on the local SQLite file at in-process speed; writes go to the master; `sync()` and
 * `waitFor(lsn)` give read-your-writes.
 *
 * ```ts
 * const db = await openReplica({ master: 'http://127.0.0.1:4001', path: './replica-data' })
 * const { lsn } = await db.execute('INSERT INTO fruit(name) VALUES (?)', ['fig'])
 * await db.waitFor(lsn)
 * db.query<{ name: string }>('SELECT name FROM fruit')   // includes 'fig'
 * await db.close()
 * ```
 *
 * Parameters travel to the master in rqlite's JSON body, so a text parameter of the exact form
 * `x'0a1b'` is read there as a BLOB (rqlite's rule).
 */
export { openReplica, EmbeddedReplica } from './embedded-replica.ts'
export type { ReplicaOptions, WaitOptions, Staleness, ReplicaStatus } from './replica-options.ts'
export type { WriteCallOptions, StatementResult, WriteAck, ExecuteResult, BatchResult } from './write-results.ts'
export type { Row } from './local-rows.ts'
export type { StatementOutcome, WriteStatement } from './master-client.ts'
export { SqlError, IndeterminateWriteError } from './errors.ts'
