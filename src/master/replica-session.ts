/**
 * One connected replica as the master's replication server sees it: what was sent to it and
 * what it acknowledged, over which socket.
 */
import type { FrameSocket } from '../transport/frame-socket.ts'

export class ReplicaSession {
  nodeId: string
  url: string
  address: string
  /** Invariant: ackedLsn <= sentLsn <= the master's LSN. */
  sentLsn: number
  ackedLsn: number
  connectedAt: number
  lastAckAt: number
  isPumping = false
  /** The highest LSN this replica was asked to make durable at once (see askFlush). */
  flushAskedLsn = 0
  /** Where catch-up frames are encoded, one after another (see pump). */
  scratch: Uint8Array | undefined
  readonly socket: FrameSocket
  /**
   * Opened by a node of this cluster (it proved the cluster secret, or the cluster is open), not
   * by a user who may only read the stream. Only a node's stream can raise the epoch, count for
   * synchronous replication, be told of promotions or run jobs.
   */
  readonly isNode: boolean
  /** The replica's Tandem release, when its hello said. */
  readonly release: string | undefined

  constructor(socket: FrameSocket, hello: { nodeId: string; url: string; lsn: number; release?: string }, address: string, now: number, isNode = true) {
    this.socket = socket
    this.release = hello.release
    this.isNode = isNode
    this.nodeId = hello.nodeId
    this.url = hello.url
    this.address = address
    this.sentLsn = hello.lsn
    this.ackedLsn = hello.lsn
    this.connectedAt = now
    this.lastAckAt = now
  }

  get isCaughtUp(): boolean {
    return !this.isPumping
  }

  /**
   * An embedded replica (inside an application, announced as `embedded://…`) follows like any
   * other, but can never be promoted and comes and goes with its application: it does not count
   * for synchronous replication, min-replicas, or confirming the master.
   */
  get isEmbedded(): boolean {
    return this.url.startsWith('embedded:')
  }

  /** Counts for sync=K, min-replicas and confirming the master, and may be promoted: a node's stream, not an embedded one. */
  get counts(): boolean {
    return this.isNode && !this.isEmbedded
  }
}

/** What the rest of the master reads of a session. */
export type ReplicaView = Pick<ReplicaSession, 'nodeId' | 'url' | 'address' | 'sentLsn' | 'ackedLsn' | 'connectedAt' | 'lastAckAt' | 'isCaughtUp' | 'release'>
