/**
 * Decides how much of the log to keep. The newest `retainBytes` are always kept; older entries
 * are kept while a connected replica still needs them (it has not acknowledged them), but never
 * past `retainBytesMax`, so a replica that stopped acknowledging cannot fill the disk: it will
 * bootstrap from a snapshot instead.
 *
 * Accounting is by chunks of consecutive entries (not one record per entry), so memory stays
 * small for long logs; truncation happens on chunk boundaries and keeps slightly more, never less.
 */
export interface RetentionLimits {
  retainBytes: number
  retainBytesMax: number
}

interface Chunk {
  firstLsn: number
  lastLsn: number
  bytes: number
}

const chunkEntriesMax = 64
const chunkBytesMax = 256 * 1024

export class Retention {
  private chunks: Chunk[] = []
  private totalBytes = 0

  add(lsn: number, bytes: number): void {
    const last = this.chunks[this.chunks.length - 1]
    if (last !== undefined && last.lastLsn - last.firstLsn + 1 < chunkEntriesMax && last.bytes < chunkBytesMax) {
      last.lastLsn = lsn
      last.bytes += bytes
    } else {
      this.chunks.push({ firstLsn: lsn, lastLsn: lsn, bytes })
    }
    this.totalBytes += bytes
  }

  get bytes(): number {
    return this.totalBytes
  }

  /**
   * The LSN before which entries may be deleted, or undefined to keep everything.
   * `neededFromLsn` is the oldest LSN a connected replica still needs (undefined: none does).
   */
  truncationPoint(limits: RetentionLimits, neededFromLsn: number | undefined): number | undefined {
    const oldest = this.chunks[0]?.firstLsn
    if (oldest === undefined) return undefined
    let bytesFromEnd = 0
    let bySize: number | undefined
    let byCap: number | undefined
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const chunk = this.chunks[i]!
      bytesFromEnd += chunk.bytes
      // Keep the chunk that reaches retainBytes; past the cap, keep nothing older (but always
      // the newest chunk, which holds the position).
      if (bySize === undefined && bytesFromEnd >= limits.retainBytes) bySize = chunk.firstLsn
      if (byCap === undefined && bytesFromEnd > limits.retainBytesMax) byCap = (this.chunks[i + 1] ?? chunk).firstLsn
    }
    let keepFrom = bySize ?? oldest
    if (neededFromLsn !== undefined) keepFrom = Math.min(keepFrom, neededFromLsn)
    if (byCap !== undefined) keepFrom = Math.max(keepFrom, byCap)
    return keepFrom > oldest ? keepFrom : undefined
  }

  /** Forgets chunks wholly before `lsn` (after the log was truncated there). */
  dropBefore(lsn: number): void {
    while (this.chunks.length > 1 && this.chunks[0]!.lastLsn < lsn) {
      this.totalBytes -= this.chunks[0]!.bytes
      this.chunks.shift()
    }
  }

  reset(): void {
    this.chunks = []
    this.totalBytes = 0
  }
}
