/**
 * Tandem as a library. `TandemNode.start()` runs a master or a replica inside this process,
 * exactly as `tandem master` / `tandem replica` do; on a master, `node.write()` takes writes
 * through the write pipeline without HTTP, and `await node.query()` reads the local database (on a read thread).
 * `openReplica()` keeps an embedded replica inside the application: local reads, writes to the master.
 * `connect()` is the client (also `tandem/client`): writes to the master, reads from replicas.
 *
 * Errors: the client and the embedded replica throw TandemClientError and its subclasses; a
 * TandemNode throws TandemError. Both carry the catalogue's codes (`codes`).
 *
 * Two client types are exported here under a `Client` prefix, because the node's types had the
 * names first: `ClientStatementResult` (a write statement's outcome, as in `BatchResult.results`)
 * and `ClientSqlValue` (a value a client statement binds, booleans included). `tandem/client`
 * exports them under their own names.
 */
export { TandemNode, type NodeOptions } from './node/tandem-node.ts'
export type { NodeConfig } from './node/config.ts'
export type { WriteRequest, WriteOutcome } from './master/write-pipeline.ts'
export type { SqlStatement, StatementResult, SqlValue, SqlParams } from './storage/index.ts'
export { TandemError, codes, type ErrorCode } from './shared/errors.ts'
export { openReplica, type EmbeddedReplica, type ReplicaOptions } from './embedded/index.ts'
export {
  connect,
  TandemClient,
  Transaction,
  Session,
  AbortedError,
  IndeterminateWriteError,
  SqlError,
  SyncTimeoutError,
  TandemClientError,
  TimeoutError,
  isTandemClientError,
  type BatchOptions,
  type ConnectOptions,
  type Consistency,
  type ReadTarget,
  type WriteOptions,
  type QueryOptions,
  type Params,
  type SqlValue as ClientSqlValue,
  type Statement,
  type BatchResult,
  type ExecResult,
  type Row,
  type Rows,
  type StatementFailure,
  type StatementResult as ClientStatementResult,
  type SyncState,
  type TxResult,
  type Value,
  type WriteAck,
  type ReplicaView,
  type TopologyView,
  type ClientErrorCode,
  type IndeterminateReason,
} from './client/index.ts'
