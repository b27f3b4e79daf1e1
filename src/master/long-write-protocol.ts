/**
 * Messages between the write pipeline and the long-write thread (long-write-worker.ts), and the
 * shape errors take across it.
 */
import { TandemError, messageOf, type ErrorCode } from '../shared/errors.ts'
import type { LogEntry } from '../replication-log/log-entry.ts'
import type { Synchronous, StatementResult } from '../storage/index.ts'
import type { WriteRequest } from './write-batch.ts'

export interface LongWriteWorkerData {
  dbPath: string
  synchronous: Synchronous
  queryTimeoutMs: number
  entryBytesMax: number
  /** The node's schema generation (SchemaGeneration.words). */
  schema: Int32Array
  /** The file the schema generation is mirrored into for the node's HTTP workers (SchemaGeneration.mirrorPath). */
  schemaMirror: string | undefined
}

export type ToLongWriter =
  | { type: 'run'; request: WriteRequest; stopped: Map<number, string> | undefined; lsn: number; epoch: number; previousHash: Uint8Array | null }
  | { type: 'stop' }

export type FromLongWriter =
  /** `watchedId`: the thread connection's, for StatementLimits.cancel(); undefined without limits. */
  | { type: 'ready'; watchedId: number | undefined }
  | { type: 'done'; outcome: LongWriteOutcome }

export interface WireError {
  code?: ErrorCode
  message: string
  details?: Record<string, unknown>
}

export type LongWriteOutcome =
  /** `entry`: undefined when the request changed nothing. */
  | { kind: 'committed'; entry: LogEntry | undefined; results: StatementResult[] | undefined; replayedLsn: number | undefined; error: WireError | undefined }
  | { kind: 'oversized'; bytes: number }
  /** Nothing was applied: the transaction could not commit, or the node is stopping. */
  | { kind: 'failed'; error: WireError }

export function toWire(error: unknown): WireError {
  if (error instanceof TandemError) return { code: error.code, message: error.message, details: error.details }
  return { message: messageOf(error) }
}

export function fromWire(error: WireError): Error {
  return error.code === undefined ? new Error(error.message) : new TandemError(error.code, error.message, error.details)
}
