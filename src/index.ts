/**
 * Tandem as a library. `TandemNode.start()` runs a master or a replica inside this process,
 * exactly as `tandem master` / `tandem replica` do; on a master, `node.write()` takes writes
 * through the write pipeline without HTTP, and `node.query()` reads the local database.
 * `openReplica()` keeps an embedded replica inside the application: local reads, writes to the master.
 */
export { TandemNode, type NodeOptions } from './node/tandem-node.ts'
export type { NodeConfig } from './node/config.ts'
export type { WriteRequest, WriteOutcome } from './master/write-pipeline.ts'
export type { SqlStatement, StatementResult, SqlValue, SqlParams } from './storage/index.ts'
export { TandemError, codes, type ErrorCode } from './shared/errors.ts'
export { openReplica, type EmbeddedReplica, type ReplicaOptions } from './embedded/index.ts'
