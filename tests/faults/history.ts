/**
 * The history of a fault scenario: every client operation with when it was invoked and when it
 * completed, its outcome and where it was served; every promotion; every fault injected. Times
 * are milliseconds on one clock, the recording process's `performance.now()`, so they order
 * operations in real time as the test saw them (never the nodes' clocks).
 *
 * Outcomes, as a client can know them:
 * - `ok`: acknowledged (HTTP 200 with every statement applied). For a write: it must survive.
 * - `failed`: definitely not applied (a 4xx, a 503, a 421/301 redirect, a connection refused
 *   before sending, a client error that promises nothing was applied). It must never appear.
 * - `indeterminate`: may or may not have been applied (a timeout or lost connection after
 *   sending, a 5xx, 202 SYNC_TIMEOUT: committed on the master but not confirmed). Nothing is
 *   required of it.
 */

export type Outcome = 'ok' | 'failed' | 'indeterminate'

export interface OperationRecord {
  /** The client (process) that issued it; a session in the checker's terms. */
  process: string
  op: 'write' | 'read'
  /** The register written or read. */
  key: string
  /** The value written (unique in the whole history), or the value read (null: the key is unset). */
  value: string | null
  invokeAt: number
  completeAt: number
  outcome: Outcome
  /** A write's entry LSN (X-Tandem-Lsn of the acknowledgement); a read's: the serving node's applied LSN. */
  lsn?: number
  /** X-Tandem-Epoch of the answer; undefined when the client could not see it (tandem/client). */
  epoch?: number
  /** The URL of the node that answered. */
  node?: string
  /** Why it failed or is indeterminate, for reports. */
  error?: string
}

export interface PromotionRecord {
  /** The node promoted. */
  node: string
  /** The epoch it serves from now on and the LSN its epoch follows (the promote answer). */
  epoch: number
  lsn: number
  invokeAt: number
  completeAt: number
}

export interface FaultRecord {
  what: 'kill' | 'pause' | 'resume' | 'restart' | 'corrupt' | 'truncate' | 'fill-disk' | 'free-disk' | 'follow' | 'promote-refused'
  node: string
  at: number
  detail?: string
}

/** What the checker reads: plain data, so unit tests can write histories by hand. */
export interface HistoryData {
  operations: OperationRecord[]
  promotions: PromotionRecord[]
  faults: FaultRecord[]
  /** When the workload started and stopped (for unavailability). */
  startedAt: number
  stoppedAt: number
}

export class History implements HistoryData {
  readonly operations: OperationRecord[] = []
  readonly promotions: PromotionRecord[] = []
  readonly faults: FaultRecord[] = []
  startedAt = History.now()
  stoppedAt = Number.NaN

  static now(): number {
    return performance.now()
  }

  record(operation: OperationRecord): void {
    this.operations.push(operation)
  }

  fault(what: FaultRecord['what'], node: string, detail?: string): void {
    this.faults.push({ what, node, at: History.now(), ...(detail === undefined ? {} : { detail }) })
  }

  promoted(promotion: PromotionRecord): void {
    this.promotions.push(promotion)
  }
}
