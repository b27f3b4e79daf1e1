/**
 * rqlite's queued writes (`POST /db/execute?queue`): the request is answered at once with a
 * sequence number and applied after, in the order queued; with `wait` the answer comes once it
 * is applied (at most `timeout`). Nothing is queued here but the count: the write goes to the
 * master's pipeline at once, which commits in arrival order and group-commits what waits. A write
 * refused before it could run (the master was deposed, its queue is full) is answered with that
 * refusal, not a sequence number; a statement's SQL error is not reported, as in rqlite.
 */
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'

/** Queued writes not yet applied, at most: past it, a queued write is refused (OVERLOADED). */
const heldMax = 10_000
/** How long `wait` waits without `timeout`. */
const waitDefaultMs = 30_000

export class WriteQueue {
  private last = 0n
  private held = 0
  private readonly logger: Logger

  constructor(logger: Logger) {
    this.logger = logger
  }

  /** Starts `write`; resolves with its sequence number once it is known to be running, and `done` when it is applied. */
  async enqueue<T>(write: () => Promise<T>): Promise<{ sequenceNumber: bigint; done: Promise<T> }> {
    if (this.held >= heldMax) throw new TandemError('OVERLOADED', `${this.held} queued writes are not applied yet; retry shortly`)
    this.held++
    const sequenceNumber = this.nextSequence()
    let refusal: { error: unknown } | undefined
    const done = write().finally(() => this.held--)
    done.catch((error: unknown) => {
      refusal ??= { error }
      this.logger.warn({ sequenceNumber: String(sequenceNumber), err: messageOf(error) }, 'a queued write failed')
    })
    // A refusal comes before the write reaches the pipeline's next batch: wait one turn for it.
    await new Promise((resolve) => setImmediate(resolve))
    if (refusal !== undefined) throw refusal.error
    return { sequenceNumber, done }
  }

  /**
   * `wait`: resolves once `done` settles (undefined when the write failed: its error is logged, as
   * in rqlite), or throws QUEUE_TIMEOUT past `timeoutMs`, the write still queued.
   */
  async applied<T>(sequenceNumber: bigint, done: Promise<T>, timeoutMs = waitDefaultMs): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)))
    const outcome = await Promise.race([done.catch(() => undefined), late]).finally(() => clearTimeout(timer))
    if (outcome === 'late') throw new TandemError('QUEUE_TIMEOUT', `queued write ${sequenceNumber} was not applied within ${timeoutMs} ms; it stays queued`, { sequenceNumber: String(sequenceNumber) })
    return outcome
  }

  /** Like rqlite's: increasing, from the clock in nanoseconds. */
  private nextSequence(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n
    this.last = now > this.last ? now : this.last + 1n
    return this.last
  }
}
