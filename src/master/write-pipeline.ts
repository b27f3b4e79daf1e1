/**
 * The write pipeline: the master's one writer. Requests queue here and are group-committed, a
 * batch at a time, each batch one transaction that appends one log entry (write-batch.ts). Then
 * every request in the batch is answered with the entry's LSN and the entry goes to replication.
 *
 * Batching happens by itself: SQLite calls are synchronous, so requests that arrive while a batch
 * commits wait in the socket buffers, are parsed together on the next turn of the event loop,
 * and form the next batch.
 *
 * The event loop also answers /readyz, reads and replication, so it gives writes a budget
 * (`longWrites.budgetMs`): a batch takes no more requests once it has run that long, and a
 * request that needs longer is rolled back and runs alone on the long-write thread
 * (long-write-worker.ts), while the pipeline waits for it. Writes queue behind it (SQLite has one
 * writer); everything else on the node goes on.
 */
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Clock } from '../shared/clock.ts'
import { entryBytesMax } from '../shared/limits.ts'
import type { Logger } from '../shared/logger.ts'
import { hashFromHex, type LogEntry } from '../replication-log/log-entry.ts'
import type { LogStore } from '../replication-log/log-store.ts'
import { isCorruption, type GuardedConnection, type SchemaGeneration, type StatementResult, type Synchronous } from '../storage/index.ts'
import { WriteBatch, type BatchItem, type BatchOutcome, type InternalWrite, type WriteRequest } from './write-batch.ts'
import type { LoadSource, LoadSummary } from './database-load.ts'
import { LongWriteThread } from './long-write-thread.ts'
import { fromWire, type LongWriteOutcome } from './long-write-protocol.ts'

export type { InternalWrite, WriteRequest } from './write-batch.ts'

/** A load (POST /db/load, --import): a SQLite file that replaces the database, or SQL text run on it. */
export interface LoadRequest {
  load: LoadSource
}

export interface WriteOutcome {
  results: StatementResult[]
  /** What a LoadRequest copied. */
  load?: LoadSummary
  /** The LSN of the entry holding this request's changes, or the newest LSN if it changed nothing. */
  lsn: number
  /** True when an Idempotency-Key repeat was answered with the first run's outcome. */
  replayed: boolean
}

export interface WritePipelineOptions {
  writer: GuardedConnection
  log: LogStore
  /** Moved around the COMMIT of every batch that changed the schema (see SchemaGeneration). */
  schema: SchemaGeneration
  clock: Clock
  logger: Logger
  /** Requests waiting beyond this are refused with OVERLOADED. */
  queueMax: number
  /** Requests per transaction at most. */
  batchMax: number
  onCommit: (entry: LogEntry) => void
  /** Largest entry committed (shared/limits.ts); a test may lower it. */
  entryBytesMax?: number
  /**
   * Requests past the event loop's budget run on the long-write thread, on a connection of its
   * own to `dbPath`. Omitted (or without statement limits): every request runs on the event loop.
   */
  longWrites?: { dbPath: string; synchronous: Synchronous; queryTimeoutMs: number; budgetMs: number }
}

interface Pending extends Omit<BatchItem, 'request'> {
  request: WriteRequest | InternalWrite | LoadRequest
  resolve: (outcome: WriteOutcome) => void
  reject: (error: unknown) => void
}

export class WritePipeline {
  private readonly queue: Pending[] = []
  private scheduled = false
  /** Requests at the queue's head to commit one per batch: together they made an entry too large. */
  private soloCount = 0
  private closed = false
  private closedReason: TandemError | undefined
  private lsn: number
  /** The history hash of entry `lsn` (null: none, or written before entries had one). */
  private hash: Uint8Array | null
  private readonly epoch: number
  private readonly batch: WriteBatch
  private readonly options: WritePipelineOptions
  /** Requests past the budget, waiting for the long-write thread, oldest first. */
  private readonly longLane: Pending[] = []
  /** The batch a long request was taken from runs again before the long request does. */
  private rerunFirst = false
  private thread: LongWriteThread | undefined
  /** The long-write thread runs a request: no batch runs meanwhile. */
  private longRunning: Promise<void> | undefined
  /** Long requests run so far (/status). */
  longWrites = 0

  constructor(options: WritePipelineOptions) {
    this.options = options
    const budgetMs = options.writer.watched === undefined ? undefined : options.longWrites?.budgetMs
    this.batch = new WriteBatch({
      writer: options.writer,
      log: options.log,
      schema: options.schema,
      clock: options.clock,
      entryBytesMax: this.entryBytesMax,
      budget: budgetMs === undefined ? undefined : { ms: budgetMs, nodeLimitMs: options.longWrites!.queryTimeoutMs },
    })
    const position = options.log.position()
    this.lsn = position.lsn
    this.hash = hashFromHex(position.hash)
    this.epoch = options.log.epoch()
  }

  get lastLsn(): number {
    return this.lsn
  }

  get pending(): number {
    return this.queue.length + this.longLane.length + (this.longRunning === undefined ? 0 : 1)
  }

  /** Is a request running on the long-write thread now? */
  get isWritingLong(): boolean {
    return this.longRunning !== undefined
  }

  submit(request: WriteRequest | InternalWrite | LoadRequest): Promise<WriteOutcome> {
    if (this.closed) return Promise.reject(this.closedReason ?? new TandemError('SHUTTING_DOWN', 'the master is stopping'))
    if (this.damage !== undefined) return Promise.reject(new TandemError('WRITE_FAILED', `${this.damage}: this master takes no more writes (nothing of the request was applied); its data must come from a healthy copy`))
    if (this.queue.length >= this.options.queueMax) {
      return Promise.reject(new TandemError('OVERLOADED', `the write queue holds ${this.queue.length} requests; retry shortly`))
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject })
      this.schedule()
    })
  }

  /**
   * Refuses new requests, and stops the long request under way (it could run to the query
   * timeout, past the time a stopping node has). Queued ones still commit, unless `reason` is
   * given: then they are refused with it (a deposed master must not acknowledge anything more).
   */
  close(reason?: TandemError): void {
    this.closed = true
    this.closedReason ??= reason
    this.thread?.cancel()
    if (reason === undefined) return
    for (const pending of [...this.queue.splice(0), ...this.longLane.splice(0)]) pending.reject(reason)
  }

  /** close(), then waits for the long request under way (if any) to stop, and the long-write thread to end. */
  async stop(): Promise<void> {
    this.close()
    await this.longRunning
    await this.thread?.stop()
  }

  /**
   * Why the last batch could not commit (a full disk, an I/O error), until one commits again:
   * the master is not ready meanwhile (/readyz, /status master.last_problem).
   */
  failure: string | undefined

  /**
   * SQLite found the database file damaged (SQLITE_CORRUPT, SQLITE_NOTADB) while writing: for
   * good. Every later write is refused; the node's data must come from a healthy copy (with a
   * coordinator, the master hands over and resyncs as a replica).
   */
  damage: string | undefined

  /** Writes may succeed again (the disk has room): readiness no longer waits for a commit to say so. */
  clearFailure(): void {
    if (this.damage === undefined) this.failure = undefined
  }

  private get entryBytesMax(): number {
    return this.options.entryBytesMax ?? entryBytesMax
  }

  private schedule(): void {
    if (this.scheduled || this.longRunning !== undefined) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.runBatch()
      if (this.queue.length > 0 || this.longLane.length > 0) this.schedule()
    })
  }

  private runBatch(): void {
    if (this.longRunning !== undefined) return
    if (this.longLane.length > 0 && !this.rerunFirst) return this.runLong(this.longLane.shift()!)
    this.rerunFirst = false
    if (this.queue[0] !== undefined && 'load' in this.queue[0].request) return this.runLoad(this.queue.shift()!)
    const batch = this.queue.splice(0, this.soloCount > 0 ? 1 : this.batchSize()) as (Pending & BatchItem)[]
    if (batch.length === 0) return
    if (this.soloCount > 0) this.soloCount--
    let outcome: BatchOutcome
    try {
      outcome = this.batch.run(batch, this.lsn + 1, this.epoch, this.hash)
    } catch (error) {
      this.failed(batch, error)
      return
    }
    switch (outcome.kind) {
      case 'again':
        return this.runAgain(batch)
      case 'too-long': {
        const rest = batch.filter((pending) => pending !== outcome.item)
        this.runAgain(rest)
        this.rerunFirst = rest.length > 0
        this.longLane.push(outcome.item as Pending)
        return
      }
      case 'oversized':
        return this.refuseOversized(batch, outcome.bytes)
      case 'committed':
        this.queue.unshift(...batch.slice(outcome.ran))
        return this.committed(batch.slice(0, outcome.ran), outcome.entry)
    }
  }

  /**
   * A load runs alone, on the event loop: the pipeline holds every write meanwhile, as for a long
   * write (a load is an operator's rare act; it replaces everything anyway).
   */
  private runLoad(pending: Pending): void {
    let outcome: { entry: LogEntry; summary: LoadSummary; results: StatementResult[] }
    try {
      outcome = this.batch.load((pending.request as LoadRequest).load, this.lsn + 1, this.epoch, this.hash)
    } catch (error) {
      if (error instanceof TandemError && ['BAD_REQUEST', 'SCHEMA_REFUSED', 'SQL_REFUSED'].includes(error.code)) return pending.reject(error)
      return this.failed([pending], error)
    }
    this.lsn = outcome.entry.lsn
    this.hash = outcome.entry.hash
    this.failure = this.damage
    pending.resolve({ results: outcome.results, lsn: this.lsn, replayed: false, load: outcome.summary })
    this.options.onCommit(outcome.entry)
  }

  /** Requests for the next batch: up to batchMax, and one that must be alone forms a batch of its own (a load is never in one). */
  private batchSize(): number {
    const isAlone = (pending: Pending) => ('internal' in pending.request && pending.request.alone === true) || 'load' in pending.request
    if (this.queue[0] !== undefined && isAlone(this.queue[0])) return 1
    let size = 0
    while (size < this.queue.length && size < this.options.batchMax && !isAlone(this.queue[size]!)) size++
    return size
  }

  private committed(batch: Pending[], entry: LogEntry | undefined): void {
    if (entry !== undefined) {
      this.lsn = entry.lsn
      this.hash = entry.hash
    }
    this.failure = this.damage
    for (const pending of batch) {
      if (this.closedReason !== undefined) pending.reject(this.closedReason)
      else if (pending.error !== undefined) pending.reject(pending.error)
      else pending.resolve({ results: pending.results ?? [], lsn: pending.replayedLsn ?? this.lsn, replayed: pending.replayedLsn !== undefined })
    }
    if (entry !== undefined) this.options.onCommit(entry)
  }

  /** Nothing of the batch was applied: the node is stopping, or its transaction could not commit. */
  private failed(batch: Pending[], error: unknown): void {
    if (error instanceof TandemError && error.code === 'SHUTTING_DOWN') {
      for (const pending of batch) pending.reject(error)
      return
    }
    if (this.closed) {
      const stopping = this.closedReason ?? new TandemError('SHUTTING_DOWN', 'the master is stopping: nothing of the request was applied')
      for (const pending of batch) pending.reject(stopping)
      return
    }
    this.options.logger.error({ err: error }, 'write batch failed to commit')
    if (isCorruption(error)) this.damage ??= `the database file is damaged: ${messageOf(error)}`
    this.failure = this.damage ?? `writes fail: ${messageOf(error)}`
    const failure = new TandemError('WRITE_FAILED', `the master could not commit: ${messageOf(error)}`, { cause: error })
    for (const pending of batch) pending.reject(failure)
  }

  /** Runs a request past the budget on the long-write thread; the pipeline waits for it. */
  private runLong(pending: Pending): void {
    if (this.closed) return this.failed([pending], new TandemError('SHUTTING_DOWN', 'the master is stopping: nothing of the request was applied'))
    const { longWrites } = this.options
    if (this.thread === undefined || !this.thread.isAlive) {
      this.thread = new LongWriteThread(
        { dbPath: longWrites!.dbPath, synchronous: longWrites!.synchronous, queryTimeoutMs: longWrites!.queryTimeoutMs, entryBytesMax: this.entryBytesMax, schema: this.options.schema.words, schemaMirror: this.options.schema.mirrorPath },
        this.options.logger,
      )
    }
    this.longWrites++
    const request = pending.request as WriteRequest
    this.longRunning = this.thread
      .run(request, pending.stopped, this.lsn + 1, this.epoch, this.hash)
      .then(
        (outcome) => this.finishLong(pending, outcome),
        (error: unknown) => this.failed([pending], error),
      )
      .finally(() => {
        this.longRunning = undefined
        // The thread's connection committed: what the writer's capture remembers may be stale.
        this.batch.forgetCache()
        if (this.queue.length > 0 || this.longLane.length > 0) this.schedule()
      })
  }

  private finishLong(pending: Pending, outcome: LongWriteOutcome): void {
    switch (outcome.kind) {
      case 'failed':
        return this.failed([pending], fromWire(outcome.error))
      case 'oversized':
        return pending.reject(this.oversizedError(outcome.bytes))
      case 'committed':
        pending.results = outcome.results
        pending.replayedLsn = outcome.replayedLsn
        pending.error = outcome.error === undefined ? undefined : fromWire(outcome.error)
        return this.committed([pending], outcome.entry)
    }
  }

  /**
   * The batch's entry is larger than a replica takes (it was rolled back). Alone, the request is
   * refused; in a group-committed batch, its requests commit again one per batch, so one large
   * request never fails the small ones that happened to share its transaction.
   */
  private refuseOversized(batch: Pending[], bytes: number): void {
    if (batch.length > 1) {
      this.runAgain(batch)
      this.soloCount += batch.length
      return
    }
    batch[0]!.reject(this.oversizedError(bytes))
  }

  private oversizedError(bytes: number): TandemError {
    const limit = this.entryBytesMax
    return new TandemError(
      'ENTRY_TOO_LARGE',
      `the request changes ${bytes} bytes of rows, more than one replication entry carries (${limit} bytes): nothing was applied; split it into smaller requests`,
      { bytes, entryBytesMax: limit },
    )
  }

  /** Puts rolled-back requests back at the queue's head, as they were before they ran. */
  private runAgain(batch: Pending[]): void {
    for (const pending of batch) {
      delete pending.results
      delete pending.replayedLsn
      delete pending.error
    }
    this.queue.unshift(...batch)
  }
}
