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
  synchronous: Synchronous
  /** The newest log bytes always kept. */
  logRetainBytes: number
  /** Never keep more log than this, even for a connected replica that is behind. */
  logRetainBytesMax: number
  bodyLimitBytes: number
  heartbeatMs: number
  /** A replication peer silent this long is considered gone. */
  silenceMsMax: number
  writeQueueMax: number
  writeBatchMax: number
  /** Replica only: apply each entry no earlier than this long after it arrives (a delayed replica). */
  applyDelayMs: number
  /** Master only: replicas that must confirm a write before it is acknowledged (per request: sync=K). */
  syncReplicas: number
  /** How long a synchronous write waits for its confirmations (per request: sync_timeout). */
  syncTimeoutMs: number
  /** Master only: refuse writes while fewer than this many replicas are within maxLagMs. */
  minReplicas: number
  maxLagMs: number
  /** How long the master remembers an Idempotency-Key. */
  idempotencyWindowMs: number
  /** Epoch checks. Off only for the fault suite's negative control (TANDEM_UNSAFE_DISABLE_FENCING=1). */
  fencing: boolean
}

export const defaultConfig = {
  host: '127.0.0.1',
  synchronous: 'full',
  logRetainBytes: 64 * 1024 * 1024,
  logRetainBytesMax: 1024 * 1024 * 1024,
  bodyLimitBytes: 16 * 1024 * 1024,
  heartbeatMs: 250,
  silenceMsMax: 5000,
  writeQueueMax: 10_000,
  writeBatchMax: 1000,
  applyDelayMs: 0,
  syncReplicas: 0,
  syncTimeoutMs: 5000,
  minReplicas: 0,
  maxLagMs: 10_000,
  idempotencyWindowMs: 24 * 60 * 60 * 1000,
  fencing: true,
} as const satisfies Partial<NodeConfig>
