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
} as const satisfies Partial<NodeConfig>
