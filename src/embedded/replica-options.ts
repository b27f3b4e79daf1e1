/** What openReplica() takes, and what an embedded replica reports about itself. */
import type { Clock } from '../shared/clock.ts'
import type { Logger } from '../shared/logger.ts'
import type { Position } from '../replication-log/index.ts'
import type { Synchronous } from '../storage/index.ts'
import type { FollowerState } from '../replica/follower.ts'

export interface ReplicaOptions {
  /** The master's HTTP URL, e.g. `http://127.0.0.1:4001`. */
  master: string
  /** The replica's directory, created if missing: its SQLite file, its log, its node id. One replica per directory. */
  path: string
  /** Aborting it rejects an open in progress, and closes the replica once open. */
  signal?: AbortSignal
  /** A pino logger. Default: JSON lines on stderr, warnings and errors only (TANDEM_LOG_LEVEL overrides). */
  logger?: Logger
  /** How long opening an empty directory waits for its first copy of the master. Default 30 s. */
  openTimeoutMs?: number
  /** The bound on each call to the master, a write's retries included, and on connecting to it. Default 30 s. */
  requestTimeoutMs?: number
  /**
   * The local file's synchronous level. Default `normal`: the data and the position stay
   * consistent through any crash (a power loss may cost the newest entries, which are streamed
   * again), and fsyncs stay off the application's thread. The master never counts an embedded
   * replica toward sync=K, so nothing relies on its disk.
   */
  synchronous?: Synchronous
  clock?: Clock
  /** HTTP Basic credentials of a user with the replicate and execute permissions (a cluster with --auth). */
  auth?: { username: string; password: string }
  /** The cluster secret (its file's content), instead of a user: the replica then follows as a node of the cluster. */
  clusterSecret?: string
  /** TLS for an https:// master: the CA that signs its certificate (PEM), and a certificate and key for mutual TLS. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer }
}

export interface WaitOptions {
  /** Default 5000 ms, then MIN_LSN_TIMEOUT. */
  timeoutMs?: number
}

export interface Staleness {
  /** Streaming from the master right now. */
  connected: boolean
  /** Since this replica last heard from its master (heartbeats every 250 ms); undefined if not since it opened. */
  sinceContactMs: number | undefined
  /** The master's newest LSN as last heard, minus the applied LSN. */
  lagEntries: number
}

export interface ReplicaStatus extends Staleness {
  nodeId: string
  masterUrl: string
  path: string
  position: Position
  state: FollowerState
  masterLsn: number
  snapshotsInstalled: number
  /** Why the replica last bootstrapped from a snapshot or diverged. */
  lastProblem: string | undefined
}
