/**
 * The commit times of the newest entries, in a fixed ring, so lag in milliseconds (how long
 * ago the oldest entry a replica lacks was committed) costs no log read on the write path.
 * Times are the master's own clock.
 */
export class CommitTimes {
  private readonly times: Float64Array
  private newestLsn = 0

  constructor(capacity = 65_536) {
    this.times = new Float64Array(capacity)
  }

  add(lsn: number, time: number): void {
    this.times[lsn % this.times.length] = time
    this.newestLsn = lsn
  }

  /** The commit time of `lsn`, or undefined if it is older than the ring holds. */
  of(lsn: number): number | undefined {
    if (lsn > this.newestLsn || lsn <= this.newestLsn - this.times.length || lsn <= 0) return undefined
    return this.times[lsn % this.times.length]
  }
}
