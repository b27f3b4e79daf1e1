/**
 * The messages between the ReadPool (main thread) and its read threads (read-worker.ts), and the
 * shared words they coordinate a snapshot install with. Both ends run the same build, so there
 * is no version: a message is only ever read by the code that was built with its sender.
 *
 * Reads travel in batches, one message each way per batch: a message costs a structured clone
 * and a wake-up of the receiving thread whatever it holds, and under load that cost per read
 * was as large as the HTTP work. A thread answers a batch with one message, in the batch's order.
 */
import type { ErrorCode } from '../shared/errors.ts'
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import type { SqlStatement, StatementResult } from '../storage/index.ts'

export interface ReadRequest {
  id: number
  statements: readonly SqlStatement[]
  transaction: boolean
  /**
   * Set: answer the HTTP API's `results` JSON text formatted with these options (the read
   * thread formats and serializes). Undefined: answer the StatementResult objects.
   */
  format: FormatOptions | undefined
  /** Each statement's time limit; undefined: the node's --query-timeout. */
  limitMs: number | undefined
}

export type ToReadWorker =
  /** Run these reads in order; the answer is one ReadReply[] message. */
  | { type: 'query'; reads: ReadRequest[] }
  /** Close the connection now (a snapshot install is waiting on `states[index]`). */
  | { type: 'close' }
  /** Open the connection again (the install is over); reads would open it anyway. */
  | { type: 'open' }
  /** Close the connection and exit (the node is stopping). */
  | { type: 'stop' }
  /** Fail as a bug in the thread would (tests of the pool's recovery). */
  | { type: 'crash' }

export type ReadReply =
  /** `results` is a string exactly when the request carried `format`. */
  | { id: number; ok: true; results: StatementResult[] | string; /** How long the read ran on its thread. */ micros: number }
  | { id: number; ok: false; error: { code?: ErrorCode; message: string } }

export interface ReadWorkerData {
  dbPath: string
  /** The words of the node's SchemaGeneration. */
  schema: Int32Array
  index: number
  /** control[0]: 1 while the database file is being replaced; read threads open nothing then. */
  control: Int32Array
  /** states[index]: one of connectionState, written by read thread `index` only. */
  states: Int32Array
  /** Each statement's time limit unless a read says otherwise (--query-timeout; 0: none). */
  queryTimeoutMs: number
  /**
   * Cancelling a read whose client went away, without a message (the thread may be busy in it):
   * the pool writes the read's id at `cancels[id % cancelSlots]`, and, when `running[index]` is
   * that id, cancels the statement through StatementLimits on `connections[index]` (the id of the
   * thread's watched connection, 0 while it has none). A thread writes `running[index]` before it
   * checks `cancels`, the pool the other way round, so one of the two sees the other.
   */
  cancels: Int32Array
  running: Int32Array
  connections: Int32Array
}

/** Slots of the cancels ring: more than the reads a pool holds in flight at once. */
export const cancelSlots = 1 << 16

export const connectionState = { closed: 0, opening: 1, open: 2 } as const
