/**
 * What a replica acknowledges: the newest LSN that is durable here, never more. Without a flush
 * (applying at synchronous=FULL or OFF), what was applied is what can be acknowledged. With one
 * (applying at NORMAL, the WAL synced off the event loop), acknowledgements wait for the sync,
 * and the sync waits up to `flushDelayMs` unless the master asked for it (a synchronous write
 * waits on this replica): under a steady stream of small writes, replicas sharing a disk with
 * their master would otherwise sync as often as it commits, and every one of those syncs delays
 * the master's own. Syncs run one at a time and each covers every batch applied before it
 * started.
 */
export interface DurableAcksOptions<C> {
  /** The applied position, durable or not. */
  appliedLsn: () => number
  /** Makes everything applied so far durable; undefined when applying already does. */
  flush: (() => Promise<void>) | undefined
  /** 0: sync after every batch. */
  flushDelayMs: number
  /** The connection acknowledgements go to now (a sync that ends on another one acknowledges nothing). */
  connection: () => C | undefined
  send: (connection: C, lsn: number) => void
  /** A sync failed: nothing was acknowledged; the connection it ran for should be dropped. */
  failed: (connection: C | undefined, error: unknown) => void
}

export class DurableAcks<C> {
  /** Invariant: <= the applied position. */
  durableLsn = 0
  private readonly options: DurableAcksOptions<C>
  private isFlushing = false
  private isFlushWanted = false
  /** The master asked for everything up to here to be durable now. */
  private askedLsn = 0
  private timer: NodeJS.Timeout | undefined

  constructor(options: DurableAcksOptions<C>) {
    this.options = options
  }

  /** Everything applied is durable now (a sync just ran outside this class). */
  markDurable(): void {
    this.durableLsn = this.options.appliedLsn()
  }

  /** After each applied batch: acknowledge it, now or once it is synced. */
  applied(): void {
    const { flush, flushDelayMs } = this.options
    if (flush === undefined) {
      this.durableLsn = this.options.appliedLsn()
      const connection = this.options.connection()
      if (connection !== undefined) this.options.send(connection, this.durableLsn)
      return
    }
    if (flushDelayMs <= 0 || this.askedLsn > this.durableLsn) {
      this.flushNow(flush)
      return
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined
      this.flushNow(flush)
    }, flushDelayMs)
  }

  /** The master asks for `lsn` (and everything before it) to be durable now. */
  ask(lsn: number): void {
    this.askedLsn = Math.max(this.askedLsn, lsn)
    if (this.options.appliedLsn() > this.durableLsn) this.applied()
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private flushNow(flush: () => Promise<void>): void {
    this.stop()
    if (this.isFlushing) {
      this.isFlushWanted = true
      return
    }
    this.isFlushing = true
    const connection = this.options.connection()
    const target = this.options.appliedLsn()
    flush()
      .then(() => {
        this.durableLsn = Math.max(this.durableLsn, target)
        if (connection !== undefined && connection === this.options.connection()) this.options.send(connection, this.durableLsn)
      })
      .catch((error: unknown) => this.options.failed(connection, error))
      .finally(() => {
        this.isFlushing = false
        if (this.isFlushWanted) {
          this.isFlushWanted = false
          this.applied()
        }
      })
  }
}
