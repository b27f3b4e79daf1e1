/**
 * A session's position: the highest LSN it has seen, from its writes' LSNs and from the
 * X-Tandem-Lsn of its reads. Reads sent with `min_lsn = session.lsn` wait until the serving
 * node has applied at least that, which makes every read of the session read-your-writes and
 * monotonic, whichever replica serves it.
 *
 * Invariant: lsn never decreases.
 */
export class Session {
  private highestLsn: number

  constructor(lsn = 0) {
    if (!Number.isSafeInteger(lsn) || lsn < 0) throw new RangeError(`a session LSN must be a non-negative integer, got ${lsn}`)
    this.highestLsn = lsn
  }

  /** The highest LSN this session has seen (0: none). Save it to resume the session elsewhere. */
  get lsn(): number {
    return this.highestLsn
  }

  /** Records an LSN the session has seen; a lower one changes nothing. */
  observe(lsn: number): void {
    if (Number.isSafeInteger(lsn) && lsn > this.highestLsn) this.highestLsn = lsn
  }
}
