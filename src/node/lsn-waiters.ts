import { TandemError } from '../shared/errors.ts'

/** Requests waiting for an LSN to be applied here (min_lsn), each with a deadline. */
export class LsnWaiters {
  private waiters: { lsn: number; resolve: () => void; timer: NodeJS.Timeout }[] = []

  wait(current: number, lsn: number, timeoutMs: number): Promise<void> {
    if (current >= lsn) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer)
        reject(new TandemError('MIN_LSN_TIMEOUT', `this node reached LSN ${this.latest} but not ${lsn} within ${timeoutMs} ms; retry, or read from the master`, { lsn, appliedLsn: this.latest }))
      }, timeoutMs)
      this.waiters.push({ lsn, resolve, timer })
    })
  }

  private latest = 0

  /** Wakes everyone waiting for `lsn` or less. */
  reached(lsn: number): void {
    this.latest = lsn
    if (this.waiters.length === 0) return
    const still: typeof this.waiters = []
    for (const waiter of this.waiters) {
      if (waiter.lsn <= lsn) {
        clearTimeout(waiter.timer)
        waiter.resolve()
      } else still.push(waiter)
    }
    this.waiters = still
  }

  clear(): void {
    for (const waiter of this.waiters) clearTimeout(waiter.timer)
    this.waiters = []
  }
}
