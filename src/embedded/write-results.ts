/** What a write through an embedded replica takes and returns (shaped as the client library's). */
import type { SqlValue } from '../storage/index.ts'

export interface WriteCallOptions {
  /**
   * Makes the write safe to repeat: the master runs a key once and answers a repeat within its
   * idempotency window (24 h) with the first outcome. With a key, a write whose answer was lost
   * is retried with it before IndeterminateWriteError; without one, never. Opt-in, as in the
   * client library: each key is a row the master keeps, and replicates, for the window.
   */
  idempotencyKey?: string
  /** Replicas that must confirm the write before the master acknowledges it (the master's default otherwise). */
  sync?: number
  syncTimeoutMs?: number
}

/** What one statement of a write did. */
export interface StatementResult {
  rowsAffected: number
  /** 0 when the statement inserted no row; a bigint beyond 2^53. */
  lastInsertId: number | bigint
  /** The rows of a RETURNING clause. */
  rows?: Record<string, SqlValue>[]
}

export interface WriteAck {
  /** The LSN of the master's entry holding the write: `waitFor(lsn)` to read it back here. */
  lsn: number
  /** The master answered from an earlier run of the same idempotency key. */
  replayed: boolean
  /** Present when the write asked for (or the master requires) synchronous replication. */
  sync?: { required: number; confirmed: number }
}

export interface ExecuteResult extends StatementResult, WriteAck {}

export interface BatchResult extends WriteAck {
  /** One per statement, in order. */
  results: StatementResult[]
}
