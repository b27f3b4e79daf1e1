/**
 * Replication lag as the replica sees it: for every entry applied, the time from its commit on
 * the master (the commit time the entry carries) to the moment it became visible here. Both
 * clocks are the same on one machine; across machines the figure includes their skew. Kept for
 * the newest `capacity` entries, for GET /replication/lag.
 */
export interface LagSummary {
  samples: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
}

export class ApplyLag {
  private readonly appliedAt: Float64Array
  private readonly lagMs: Float64Array
  private next = 0
  private count = 0

  constructor(capacity = 65_536) {
    this.appliedAt = new Float64Array(capacity)
    this.lagMs = new Float64Array(capacity)
  }

  record(appliedAt: number, commitTime: number): void {
    this.appliedAt[this.next] = appliedAt
    this.lagMs[this.next] = Math.max(0, appliedAt - commitTime)
    this.next = (this.next + 1) % this.appliedAt.length
    this.count = Math.min(this.count + 1, this.appliedAt.length)
  }

  /** Percentiles over the entries applied at or after `since` (ms since the epoch). */
  since(since: number): LagSummary {
    const values: number[] = []
    for (let i = 0; i < this.count; i++) if (this.appliedAt[i]! >= since) values.push(this.lagMs[i]!)
    if (values.length === 0) return { samples: 0, p50Ms: null, p99Ms: null, maxMs: null }
    values.sort((a, b) => a - b)
    const at = (p: number) => values[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!
    return { samples: values.length, p50Ms: at(50), p99Ms: at(99), maxMs: values[values.length - 1]! }
  }
}
