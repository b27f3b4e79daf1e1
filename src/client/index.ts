/**
 * `tandem/client`: a client for a Tandem cluster over HTTP. It imports nothing of the server.
 *
 * ```ts
 * import { connect } from 'tandem/client'
 * const db = await connect(['http://127.0.0.1:4001', 'http://127.0.0.1:4002'])
 * const { lsn } = await db.execute('INSERT INTO t(v) VALUES (?)', ['x'])
 * const rows = await db.query<{ id: number; v: string }>('SELECT * FROM t WHERE id = :id', { id: 1 })
 * await db.close()
 * ```
 */
export { connect, TandemClient, type BatchOptions } from './tandem-client.ts'
export type { ConnectOptions, Consistency, ReadTarget } from './options.ts'
export type { WriteOptions } from './writer.ts'
export type { QueryOptions } from './reader.ts'
export { Transaction } from './transaction.ts'
export { Session } from './session.ts'
export type { Params, SqlValue, Statement } from './statements.ts'
export type { BatchResult, ExecResult, Row, Rows, StatementFailure, StatementResult, SyncState, TxResult, Value, WriteAck } from './results.ts'
export type { ReplicaView, TopologyView } from './topology.ts'
export { Jobs, type CallOptions, type JobLimit, type JobOptions, type ListFilter, type MapOptions, type SubmitOptions } from './jobs.ts'
export { JobHandle, type JobHandleEvents, type WaitOptions } from './job-handle.ts'
export { Schedules, type Schedule, type ScheduleRule } from './schedules.ts'
export {
  JobFailedError,
  type Backoff,
  type Job,
  type JobEvent,
  type JobOptionsView,
  type JobState,
  type JobSummary,
  type ProgressEvent,
  type Task,
  type TaskCounts,
  type TaskError,
  type TaskEvent,
  type TaskState,
} from './job.ts'
export {
  AbortedError,
  IndeterminateWriteError,
  SqlError,
  SyncTimeoutError,
  TandemClientError,
  TimeoutError,
  isTandemClientError,
  type ClientErrorCode,
  type IndeterminateReason,
} from './client-errors.ts'
