/**
 * Makes committed transactions durable without blocking the event loop: an `fdatasync` of the
 * database's WAL file on libuv's thread pool. A connection at `synchronous = NORMAL` in WAL mode
 * commits without syncing; once `flush()` resolves, every transaction committed before it was
 * called is on disk, exactly as `synchronous = FULL` would have left it (FULL syncs the same
 * file at each commit). One flush runs at a time; callers that arrive meanwhile share the next
 * one, so many commits cost one sync (group flush).
 *
 * The WAL file keeps its inode while the database is open (a checkpoint rewinds it, never
 * replaces it), so one descriptor serves until close(). A snapshot install replaces the files:
 * make a new flusher after it.
 */
import { closeSync, existsSync, fdatasync, openSync } from 'node:fs'

export class WalFlusher {
  private readonly walPath: string
  private fd: number | undefined
  private running: Promise<void> | undefined
  private next: Promise<void> | undefined
  private isClosed = false
  /** Syncs performed, for /status: compare with the batches applied to see the grouping. */
  syncs = 0

  constructor(databasePath: string) {
    this.walPath = `${databasePath}-wal`
  }

  /** Resolves once everything committed before this call is durable. */
  flush(): Promise<void> {
    if (this.running === undefined) {
      this.running = this.sync().finally(() => (this.running = undefined))
      return this.running
    }
    // A sync is under way, but it may have started before the caller's commit: wait for the next.
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined
        return this.flush()
      })
    return this.next
  }

  private sync(): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error('the WAL flusher is closed'))
    if (this.fd === undefined) {
      // No WAL yet: nothing was committed in WAL mode, so nothing needs syncing.
      if (!existsSync(this.walPath)) return Promise.resolve()
      this.fd = openSync(this.walPath, 'r')
    }
    const fd = this.fd
    this.syncs++
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error === null ? resolve() : reject(error))))
  }

  /** Closes the descriptor once no sync uses it any more. */
  close(): void {
    this.isClosed = true
    const fd = this.fd
    this.fd = undefined
    if (fd === undefined) return
    const done = () => closeSync(fd)
    if (this.running === undefined) done()
    else this.running.then(done, done)
  }
}
