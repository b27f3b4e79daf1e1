/**
 * The embedded replica: a replica of a Tandem cluster inside the application's process. Reads
 * run on the local SQLite file at in-process speed; writes go to the master through the client
 * library (`tandem/client`), with its retry rules, results and errors; `sync()` and
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
import type { Statement, StatementFailure, StatementResult } from '../client/index.ts'

export { openReplica, EmbeddedReplica } from './embedded-replica.ts'
export type { ReplicaOptions, WaitOptions, Staleness, ReplicaStatus } from './replica-options.ts'
export type { Row } from './local-rows.ts'
// A write's options, results and errors are the client library's; these names stay for callers that use them.
export type { WriteOptions as WriteCallOptions, StatementResult, WriteAck, ExecResult as ExecuteResult, BatchResult } from '../client/index.ts'
export { SqlError, IndeterminateWriteError } from '../client/index.ts'
/** What one statement of a write did: its result, or its SQL error (in a SqlError's `results`). */
export type StatementOutcome = StatementResult | StatementFailure
/** One statement of a write with its parameters; batch() also takes bare SQL text. */
export type WriteStatement = Exclude<Statement, string>
