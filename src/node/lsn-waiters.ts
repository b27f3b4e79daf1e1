import { TandemError } from '../shared/errors.ts'

/**
 * Requests waiting for an LSN to be applied here (min_lsn), each with a deadline, and dropped as
 * soon as its client goes away (`signal`): each one holds its request and response, and 4,000
 * abandoned waits held ~60 MB until their deadlines.
 */
export class LsnWaiters {
  private waiters: { lsn: number; resolve: () => void; timer: NodeJS.Timeout; dispose: () => void }[] = []
  /** Told of each LSN reached, before the waiters wake. */
  private readonly onReached: ((lsn: number) => void) | undefined

  constructor(onReached?: (lsn: number) => void) {
    this.onReached = onReached
  }

  wait(current: number, lsn: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (current >= lsn) return Promise.resolve()
    if (signal?.aborted === true) return Promise.reject(gone(lsn))
    return new Promise((resolve, reject) => {
      const drop = () => {
        clearTimeout(timer)
        this.waiters = this.waiters.filter((w) => w.timer !== timer)
      }
      const onAbort = () => {
        drop()
        reject(gone(lsn))
      }
      const timer = setTimeout(() => {
        drop()
        signal?.removeEventListener('abort', onAbort)
        reject(new TandemError('MIN_LSN_TIMEOUT', `this node reached LSN ${this.latest} but not ${lsn} within ${timeoutMs} ms; retry, or read from the master`, { lsn, appliedLsn: this.latest }))
      }, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push({ lsn, resolve, timer, dispose: () => signal?.removeEventListener('abort', onAbort) })
    })
  }

  /** Requests waiting now. */
  get count(): number {
    return this.waiters.length
  }

  private latest = 0

  /** Wakes everyone waiting for `lsn` or less. */
  reached(lsn: number): void {
    this.latest = lsn
    this.onReached?.(lsn)
    if (this.waiters.length === 0) return
    const still: typeof this.waiters = []
    for (const waiter of this.waiters) {
      if (waiter.lsn <= lsn) {
        clearTimeout(waiter.timer)
        waiter.dispose()
        waiter.resolve()
      } else still.push(waiter)
    }
    this.waiters = still
  }

  clear(): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer)
      waiter.dispose()
    }
    this.waiters = []
  }
}

function gone(lsn: number): TandemError {
  return new TandemError('MIN_LSN_TIMEOUT', `the client went away while waiting for LSN ${lsn}`, { lsn })
}
