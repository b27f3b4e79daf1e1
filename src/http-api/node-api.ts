import type { Readable } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import type { LoadRequest, WriteRequest, WriteOutcome } from '../master/write-pipeline.ts'
import type { SyncOutcome, WriteOptions } from '../master/write-options.ts'
import type { ReadStops, SqlStatement, StatementResult } from '../storage/index.ts'
import type { FormatOptions } from './rqlite-format.ts'
import type { JobEvent, JobSpec, Limit, ScheduleSpec, ScheduleView, readJob, summaryOf } from '../jobs/index.ts'

/** The master's job queue, as the routes use it. */
export interface JobsApi {
  /** `warning`: no connected replica has the handler (the job waits for one). */
  submit(spec: JobSpec): Promise<{ id: string; state: string; tasks: number; lsn: number; replayed: boolean; deduplicated?: true; debounced?: true; sync?: SyncOutcome; warning?: string }>
  get(id: string): (ReturnType<typeof readJob> & { warning?: string }) | undefined
  list(filter: { state?: string; name?: string; limit: number; before?: string }): ReturnType<typeof summaryOf>[]
  cancel(id: string): Promise<void>
  retry(id: string): Promise<number>
  /** Resolves true once the job finished, false when `timeoutMs` passes first. */
  waitFinished(id: string, timeoutMs: number): Promise<boolean>
  subscribe(id: string, listener: (event: JobEvent) => void): () => void
  limits: {
    /** Sets the scope's limit (replacing it); resolves with the LSN. */
    set(limit: Limit): Promise<number>
    /** Resolves with the LSN of the deletion; LIMIT_NOT_FOUND when there was none. */
    remove(scope: string): Promise<number>
    list(): Limit[]
  }
  schedules: {
    /** Creates the schedule, or replaces the one with its id. */
    upsert(spec: ScheduleSpec): Promise<{ schedule: ScheduleView; created: boolean; lsn: number }>
    /** Resolves with the LSN of the deletion; SCHEDULE_NOT_FOUND when there was none. */
    remove(id: string): Promise<number>
    get(id: string): ScheduleView | undefined
    list(): ScheduleView[]
  }
}

export type Role = 'master' | 'replica'

export interface NodeInfo {
  id: string
  url: string
  role: Role
  reachable: boolean
  appliedLsn: number
  lagEntries: number
  lagMs: number
  /** The epoch a master serves in, when known. */
  epoch?: number
  /** A master that learned of a newer epoch: it takes no writes. */
  deposed?: boolean
  error?: string
  /** The node's Tandem release, when it said (a replica says in its hello). */
  version?: string
}

export interface Snapshot {
  stream: Readable
  lsn: number
  epoch: number
  bytes: number
}

/**
 * What the HTTP API needs from the node it serves. The node (the composition root) implements
 * it; the routes know nothing else of the node's insides.
 */
export interface NodeApi {
  readonly role: Role
  readonly nodeId: string
  readonly url: string
  /** The master's URL: this node's own on the master, the followed one on a replica. */
  masterUrl(): string | undefined
  /** Master only. */
  /** Master only: a write request, or a load (POST /db/load). */
  write(request: WriteRequest | LoadRequest, options?: WriteOptions): Promise<WriteOutcome & { sync?: SyncOutcome }>
  /** Replica only: becomes the master of a new epoch. */
  promote(force: boolean): Promise<{ epoch: number; lsn: number; url: string }>
  /** A promotion to `epoch` is under way: stop taking writes / stop following an older master. */
  /** Accept `candidate` as the master of `epoch`, unless another has it (see NodeRoles.fence). */
  fence(epoch: number, candidate: { id: string; url: string }, candidatePosition: { epoch: number; lsn: number }): { granted: boolean; vote?: { epoch: number; candidate: { id: string; url: string } }; role: Role; epoch: number; position: { epoch: number; lsn: number }; id: string }
  /**
   * Follows another master from now on (a master steps down). `byNode`: asked by a node of this
   * cluster (a promotion), which may name any URL; a user may name only a known member.
   */
  follow(masterUrl: string, caller: { byNode: boolean }): Promise<{ master: string; epoch: number }>
  /** Master only: resolves once replicas confirmed this node is still the master (strong reads). */
  confirmMastership(timeoutMs: number): Promise<void>
  /** Runs read-only statements on a local read-only connection (a read thread's, when there are any). */
  query(statements: readonly SqlStatement[], transaction: boolean, stops?: ReadStops): Promise<StatementResult[]>
  /**
   * query(), answered as the `results` array's JSON text in rqlite's shape (read-answer.ts),
   * formatted and serialized where the read ran, so the route wraps it without parsing it.
   * Refusals throw as query()'s do; SQL errors are per-statement results inside the text.
   */
  queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions, stops?: ReadStops): Promise<string>
  /** queryJson() at once on the calling thread, if the read is known to be cheap; undefined when it is not (nothing ran). */
  queryJsonIfCheap(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string | undefined
  /** Does any of these statements write? */
  isWrite(statements: readonly SqlStatement[]): boolean
  /** The highest epoch this node knows. */
  epoch(): number
  /** The newest LSN applied (replica) or committed (master) here. */
  appliedLsn(): number
  /** Resolves once appliedLsn() >= lsn; rejects with MIN_LSN_TIMEOUT after timeoutMs, or at once when `signal` aborts. */
  waitForLsn(lsn: number, timeoutMs: number, signal?: AbortSignal): Promise<void>
  /** Replica only: ms since it last heard its master (undefined: never), and the age of its data. */
  staleness(): { sinceContactMs: number | undefined; dataAgeMs: number | undefined }
  /** Throws (NOT_READY, REPLICA_DIVERGED) when local reads cannot be served. */
  assertReadable(): void
  status(): Record<string, unknown>
  nodes(): NodeInfo[]
  checksum(): { lsn: number; epoch: number; checksum: string; tables: Record<string, string> }
  snapshot(): Promise<Snapshot>
  /** The database as SQL text, as sqlite3 .dump writes it. */
  dump(): Readable
  /** `isNode`: the stream was opened by a node of this cluster (not a user with the replicate permission). */
  acceptReplication(socket: WebSocket, request: IncomingMessage, caller: { isNode: boolean }): void
  /** This node's cluster id (undefined: a replica that has not met its master yet). */
  clusterId(): string | undefined
  /** Throws CLUSTER_MISMATCH when `id` names another cluster than this node's. */
  checkCluster(id: string | undefined, from: string): void
  isReady(): { ok: boolean; lines: string[] }
  /** Replica only: commit on the master → visible here, over the entries applied since `since` (ms since the epoch). */
  applyLag(since: number): { samples: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null }
  /** Master only (throws NOT_MASTER): the job queue. */
  jobs(): JobsApi
}
