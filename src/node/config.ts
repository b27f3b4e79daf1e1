import { availableParallelism } from 'node:os'
import type { Synchronous } from '../storage/index.ts'
import type { Role } from '../http-api/node-api.ts'

export interface NodeConfig {
  role: Role
  dataDir: string
  host: string
  /** 0 picks a free port. */
  port: number
  /** Replica only: the master's HTTP URL. */
  masterUrl?: string
  /**
   * Where other nodes and clients reach this node (--advertise-url): its ready line, /nodes,
   * redirects and what it tells its master. Without a port, the listening port. Default: the
   * address it listens on.
   */
  advertiseUrl?: string
  synchronous: Synchronous
  /** The newest log bytes always kept. */
  logRetainBytes: number
  /** Never keep more log than this, even for a connected replica that is behind. */
  logRetainBytesMax: number
  bodyLimitBytes: number
  /** The largest POST /db/load body (a database file or SQL text). */
  loadLimitBytes: number
  /**
   * A connection must send a request's headers within this long, and a replication WebSocket
   * its hello: a peer that connects and says nothing holds a socket and memory for free.
   */
  headersTimeoutMs: number
  /**
   * A request must be received whole (headers and body) within this long. Only receiving is
   * bounded: long waits that follow it (a job's wait, its event stream, min_lsn) are not.
   */
  requestTimeoutMs: number
  /** Connections held at once, WebSockets included; past it new ones are closed at once. */
  connectionsMax: number
  heartbeatMs: number
  /**
   * Master only: a commit less than this long after the one before waits until this long after
   * the last frame to the replicas, so one frame carries every commit made meanwhile (see
   * ReplicationServer.publish); 0: every commit is sent at once.
   */
  streamLingerMs: number
  /** A replication peer silent this long is considered gone. */
  silenceMsMax: number
  writeQueueMax: number
  writeBatchMax: number
  /** Replica only: apply each entry no earlier than this long after it arrives (a delayed replica). */
  applyDelayMs: number
  /**
   * Replica only, with synchronous full: how long applied entries may wait for their WAL sync
   * while no write waits for this replica (the master asks for an immediate sync when one does).
   */
  flushDelayMs: number
  /** Master only: replicas that must confirm a write before it is acknowledged (per request: sync=K). */
  syncReplicas: number
  /** How long a synchronous write waits for its confirmations (per request: sync_timeout). */
  syncTimeoutMs: number
  /** Master only: refuse writes while fewer than this many replicas are within maxLagMs. */
  minReplicas: number
  maxLagMs: number
  /** How long the master remembers an Idempotency-Key. */
  idempotencyWindowMs: number
  /** Replica only: the largest replication frame taken; shared/limits.ts's unless a test lowers it (TANDEM_TEST_FRAME_BYTES_MAX). */
  frameBytesMax?: number
  /** Epoch checks. Off only for the fault suite's negative control (TANDEM_UNSAFE_DISABLE_FENCING=1). */
  fencing: boolean
  /** Replica only: the file: URL of the handlers module (--jobs); without it the replica runs no jobs. */
  jobsModuleUrl?: string
  /** Replica only: tasks run at once. */
  concurrency: number
  /** Replica only: at most this many tasks leased to it beyond `concurrency`, queued there for a free slot (the master sizes it by the tasks' run time); defaultPrefetch when unset. */
  prefetch?: number
  /** Replica only: worker threads the tasks share, at most `concurrency`; by default one per core. */
  jobThreads?: number
  /** A handler still running this long after its abort (timeout, cancel) is killed with its thread. */
  killGraceMs: number
  /** Master: a lease not renewed by its replica's acknowledgements for this long expires. */
  leaseMs: number
  /** Master: a task whose replica was lost this many times is dead. */
  lostLeasesMax: number
  /** Master: near the end of a job, a task running this long (and twice the job's mean) gets a backup copy. */
  backupAfterMs: number
  /** Master: finished jobs are deleted after this long, or beyond the newest jobRetainCount. */
  jobRetainMs: number
  jobRetainCount: number
  /**
   * Master: unfinished tasks held at once (every one is in memory with its input, see the
   * scheduler); a submission past it is refused with OVERLOADED, and one larger than it alone
   * with BAD_REQUEST.
   */
  queuedTasksMax: number
  /**
   * Threads that run client reads, each with its own read-only connection; 0 reads on the main
   * thread. One by default: a long read then never holds up replication, heartbeats or writes,
   * for one more isolate (~30 MB). More help heavy reads on machines with cores to spare; on 2
   * cores, point reads are bound by the main thread's HTTP work (README, Performance).
   */
  /**
   * Processes that answer HTTP, this one included (http-workers.ts): the others answer reads on
   * their own read-only connections. Each costs one more Node process (README, Performance).
   * The library's default is 1; `tandem master|replica` defaults to the machine's cores.
   */
  httpWorkers: number
  readThreads: number
  /** Reads queued or running on one read thread, at most; past it a read is refused with OVERLOADED. */
  readQueueMax: number
  /** Reads whose SQL ran in at most this many µs last time run on the main thread (read-costs.ts); 0: never. */
  inlineReadMaxUs: number
  /**
   * The longest one client statement may run, read or write, before it is stopped and answered
   * rqlite's `query timeout` / `execute timeout` (--query-timeout; a request's db_timeout may
   * lower it). 0: no limit.
   */
  queryTimeoutMs: number
  /**
   * The master's event loop gives one write request (and one group-committed batch) this many ms
   * of SQLite; a request that needs longer is rolled back and runs alone on the long-write thread,
   * so /readyz, reads and replication never wait for it (--write-budget; 0: every write runs on
   * the event loop, however long).
   */
  writeBudgetMs: number
  /**
   * The master checks one key range of one table (checkRowsMax rows) this often, and every
   * replica the same range at the same LSN (anti-entropy, range-checks.ts; --check-interval;
   * 0: never).
   */
  checkIntervalMs: number
  checkRowsMax: number
  /**
   * The most one statement's result may hold, counting 16 bytes per value plus its own (8 for a
   * number); a statement past it is stopped and fails with `result too large` (--max-result-bytes;
   * 0: no limit). It bounds what one read can make a node hold in memory.
   */
  resultBytesMax: number
  /** Automatic failover: etcd's client URLs (--coordinator); without them, promotion is manual. */
  coordinatorUrls?: readonly string[]
  /** Where in etcd this cluster keeps its keys (coordinator/records.ts). */
  coordinatorPrefix: string
  /** The master's lease in etcd: a replica takes over about this long after the master stops renewing it. */
  coordinatorTtlMs: number
  /** A SQLite file (or SQL text) a new master loads when it starts (--import); a master that holds data already ignores it. */
  importFile?: string
  /** Users and permissions, in rqlite's format (--auth); without it every request may do anything. */
  authFile?: string
  /** The secret every node of the cluster is given; nodes prove it to each other (--cluster-secret-file). */
  clusterSecretFile?: string
  /** HTTPS and WSS (--tls-cert, --tls-key, --tls-ca); with tlsClientAuth, mutual TLS. */
  tlsCertFile?: string
  tlsKeyFile?: string
  tlsCaFile?: string
  tlsClientAuth: boolean
  /** Origins whose browser pages may call this node (CORS); others are refused. */
  corsOrigins: readonly string[]
  /** Listen beyond loopback without --auth and a cluster secret (or mutual TLS). */
  insecure: boolean
}

/**
 * A replica's --prefetch when unset: a bound, not a target. The master holds a replica to what
 * its slots start within 100 ms (workers.ts), so this is reached only by tasks of ~6 ms or less
 * on 4 slots. Measured on the bench's fan-out of 5,000 no-op tasks (2 replicas × 4 slots,
 * interleaved runs): ~2.4k tasks/s without prefetch, ~3.3k at 4, ~4.5k at 12, ~7.7k at 60.
 */
export const defaultPrefetch = 64

export const defaultConfig = {
  host: '127.0.0.1',
  synchronous: 'full',
  logRetainBytes: 64 * 1024 * 1024,
  logRetainBytesMax: 1024 * 1024 * 1024,
  bodyLimitBytes: 16 * 1024 * 1024,
  loadLimitBytes: 1024 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  connectionsMax: 10_000,
  heartbeatMs: 250,
  streamLingerMs: 1,
  silenceMsMax: 5000,
  writeQueueMax: 10_000,
  writeBatchMax: 1000,
  applyDelayMs: 0,
  flushDelayMs: 10,
  syncReplicas: 0,
  syncTimeoutMs: 5000,
  minReplicas: 0,
  maxLagMs: 10_000,
  idempotencyWindowMs: 24 * 60 * 60 * 1000,
  fencing: true,
  concurrency: 4,
  killGraceMs: 1000,
  leaseMs: 10_000,
  lostLeasesMax: 5,
  backupAfterMs: 1000,
  jobRetainMs: 7 * 24 * 60 * 60 * 1000,
  jobRetainCount: 10_000,
  queuedTasksMax: 100_000,
  httpWorkers: 1,
  readThreads: 1,
  readQueueMax: 1024,
  inlineReadMaxUs: 50,
  queryTimeoutMs: 30_000,
  writeBudgetMs: 20,
  checkIntervalMs: 10_000,
  checkRowsMax: 1000,
  resultBytesMax: 64 * 1024 * 1024,
  coordinatorPrefix: '/tandem',
  coordinatorTtlMs: 5000,
  tlsClientAuth: false,
  corsOrigins: [],
  insecure: false,
} as const satisfies Partial<NodeConfig>

/** The most --http-workers takes: past the cores, more processes only cost memory. */
export const httpWorkersMax = 64

/** `tandem master|replica`'s default --http-workers: one process per core. */
export function defaultHttpWorkers(): number {
  return Math.min(httpWorkersMax, availableParallelism())
}
