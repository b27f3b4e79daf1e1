/**
 * The write pipeline: the master's one writer. Requests queue here and are group-committed:
 * the writer runs every queued request inside one SQLite transaction, each in a savepoint of its
 * own so it stays all-or-nothing, while one session records the row changes. Before COMMIT it
 * appends one log entry holding those changes, in the same transaction, so data and log can
 * never disagree. Then it answers every request in the batch with the entry's LSN and hands the
 * entry to replication.
 *
 * Batching happens by itself: SQLite calls are synchronous, so requests that arrive while a batch
 * commits wait in the socket buffers, are parsed together on the next turn of the event loop,
 * and form the next batch.
 */
import { assert } from '../shared/assert.ts'
import type { Clock } from '../shared/clock.ts'
import { TandemError, messageOf } from '../shared/errors.ts'
import { entryBytesMax } from '../shared/limits.ts'
import type { Logger } from '../shared/logger.ts'
import { createEntry, encodeOps, type LogEntry } from '../replication-log/log-entry.ts'
import type { LogStore } from '../replication-log/log-store.ts'
import { IdempotencyStore } from './idempotency.ts'
import {
  ChangeCapture,
  effectiveLimitMs,
  executeTimeoutError,
  holdsDdl,
  resultTooLargeError,
  isDdlKeyword,
  prepareClientPart,
  prepareClientStatements,
  runPrepared,
  withoutCounts,
  tablesWithoutPrimaryKey,
  type GuardedConnection,
  type Connection,
  type SchemaGeneration,
  type SplitStatement,
  type Statement,
  type SqlStatement,
  type StatementResult,
} from '../storage/index.ts'

export interface WriteRequest {
  statements: readonly SqlStatement[]
  /** All statements succeed or none is applied; without it each statement stands alone. */
  transaction: boolean
  /** Run this request once per key (see idempotency.ts); `hash` tells a retry from a new request. */
  idempotency?: { key: string; hash: string }
  /** rqlite's db_timeout: each statement's time limit (at most the node's --query-timeout). */
  limitMs?: number
}

/** Tandem's own maintenance write (expiring idempotency keys, say), run past the SQL policy. */
export interface InternalWrite {
  internal: (connection: Connection) => void
}

export interface WriteOutcome {
  results: StatementResult[]
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
}

interface Pending {
  request: WriteRequest | InternalWrite
  resolve: (outcome: WriteOutcome) => void
  reject: (error: unknown) => void
  results?: StatementResult[]
  /** Set when an idempotent request is answered from its first run. */
  replayedLsn?: number
  error?: unknown
  /** Statements stopped (past their time limit, their result too large): answered with the error when the batch runs again. */
  stopped?: Map<number, string>
}

/**
 * A write statement stopped (past its time limit, its result too large): SQLite then rolls back
 * the whole transaction, the batch's other requests with it, so the batch runs again without
 * that statement, which is answered `error`.
 */
class TransactionLost extends Error {
  readonly error: string
  constructor(error: string) {
    super('a stopped statement rolled back the batch')
    this.error = error
  }
}

export class WritePipeline {
  private readonly queue: Pending[] = []
  private scheduled = false
  /** Requests at the queue's head to commit one per batch: together they made an entry too large. */
  private soloCount = 0
  private closed = false
  private lsn: number
  private epoch: number
  private readonly capture: ChangeCapture
  private readonly idempotency: IdempotencyStore
  private readonly options: WritePipelineOptions

  constructor(options: WritePipelineOptions) {
    this.options = options
    this.capture = new ChangeCapture(options.writer.connection, (fn) => options.writer.policy.internally(fn))
    this.idempotency = options.writer.policy.internally(() => new IdempotencyStore(options.writer.connection))
    const position = options.log.position()
    this.lsn = position.lsn
    this.epoch = options.log.epoch()
  }

  get lastLsn(): number {
    return this.lsn
  }

  get pending(): number {
    return this.queue.length
  }

  submit(request: WriteRequest | InternalWrite): Promise<WriteOutcome> {
    if (this.closed) return Promise.reject(this.closedReason ?? new TandemError('SHUTTING_DOWN', 'the master is stopping'))
    if (this.queue.length >= this.options.queueMax) {
      return Promise.reject(new TandemError('OVERLOADED', `the write queue holds ${this.queue.length} requests; retry shortly`))
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject })
      this.schedule()
    })
  }

  /**
   * Refuses new requests. Queued ones still commit, unless `reason` is given: then they are
   * refused with it (a deposed master must not acknowledge anything more).
   */
  close(reason?: TandemError): void {
    this.closed = true
    this.closedReason = reason
    if (reason !== undefined) for (const pending of this.queue.splice(0)) pending.reject(reason)
  }

  private closedReason: TandemError | undefined

  /**
   * Why the last batch could not commit (a full disk, an I/O error), until one commits again:
   * the master is not ready meanwhile (/readyz, /status master.last_problem).
   */
  failure: string | undefined

  /** Writes may succeed again (the disk has room): readiness no longer waits for a commit to say so. */
  clearFailure(): void {
    this.failure = undefined
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.runBatch()
      if (this.queue.length > 0) this.schedule()
    })
  }

  private runBatch(): void {
    const batch = this.queue.splice(0, this.soloCount > 0 ? 1 : this.options.batchMax)
    if (batch.length === 0) return
    if (this.soloCount > 0) this.soloCount--
    const { connection } = this.options.writer
    let entry: LogEntry | undefined
    try {
      this.internal('BEGIN IMMEDIATE')
      this.capture.begin()
      for (const pending of batch) this.runLimited(pending)
      const ops = this.capture.finish()
      if (ops.length > 0) {
        const encoded = encodeOps(ops)
        if (encoded.length > (this.options.entryBytesMax ?? entryBytesMax)) {
          this.refuseOversized(batch, encoded.length)
          return
        }
        entry = createEntry(this.lsn + 1, this.epoch, this.options.clock.now(), encoded)
        this.appendEntry(entry)
      }
      // Every schema change a batch keeps is a DDL op (the capture records each one it runs).
      if (ops.some((op) => op.kind === 'ddl')) this.options.schema.changing(() => this.internal('COMMIT'))
      else this.internal('COMMIT')
    } catch (error) {
      this.capture.abort()
      if (connection.isTransaction) this.internal('ROLLBACK')
      if (error instanceof TransactionLost) {
        this.runAgain(batch)
        return
      }
      if (error instanceof TandemError && error.code === 'SHUTTING_DOWN') {
        for (const pending of batch) pending.reject(error)
        return
      }
      this.options.logger.error({ err: error }, 'write batch failed to commit')
      this.failure = `writes fail: ${messageOf(error)}`
      const failure = new TandemError('WRITE_FAILED', `the master could not commit: ${messageOf(error)}`, { cause: error })
      for (const pending of batch) pending.reject(failure)
      return
    }
    if (entry !== undefined) this.lsn = entry.lsn
    this.failure = undefined
    for (const pending of batch) {
      if (pending.error !== undefined) pending.reject(pending.error)
      else pending.resolve({ results: pending.results ?? [], lsn: pending.replayedLsn ?? this.lsn, replayed: pending.replayedLsn !== undefined })
    }
    if (entry !== undefined) this.options.onCommit(entry)
  }

  /**
   * The batch's entry is larger than a replica takes: roll it back. Alone, the request is
   * refused; in a group-committed batch, its requests commit again one per batch, so one large
   * request never fails the small ones that happened to share its transaction.
   */
  private refuseOversized(batch: Pending[], bytes: number): void {
    this.capture.abort()
    this.internal('ROLLBACK')
    if (batch.length > 1) {
      this.runAgain(batch)
      this.soloCount += batch.length
      return
    }
    const limit = this.options.entryBytesMax ?? entryBytesMax
    batch[0]!.reject(new TandemError(
      'ENTRY_TOO_LARGE',
      `the request changes ${bytes} bytes of rows, more than one replication entry carries (${limit} bytes): nothing was applied; split it into smaller requests`,
      { bytes, entryBytesMax: limit },
    ))
  }

  /** Puts a rolled-back batch back at the queue's head, as it was before it ran. */
  private runAgain(batch: Pending[]): void {
    for (const pending of batch) {
      delete pending.results
      delete pending.replayedLsn
      delete pending.error
    }
    this.queue.unshift(...batch)
  }

  /**
   * The log row holds the whole entry, larger than the connection's value limit allows for
   * client SQL (valueBytesMax): lift the limit for this one insert.
   */
  private appendEntry(entry: LogEntry): void {
    const { connection } = this.options.writer
    const limit = connection.limits.length
    if (entry.ops.length + 1024 <= limit) return this.options.log.append(entry)
    connection.limits.length = entry.ops.length + 1024
    try {
      this.options.log.append(entry)
    } finally {
      connection.limits.length = limit
    }
  }

  /** runRequest() with the request's own statement time limit, when it asks for one (db_timeout). */
  private runLimited(pending: Pending): void {
    const { watched } = this.options.writer
    const limitMs = 'internal' in pending.request ? undefined : pending.request.limitMs
    if (watched === undefined || limitMs === undefined) this.runRequest(pending)
    else watched.withLimit(effectiveLimitMs(limitMs, watched.defaultLimitMs), () => this.runRequest(pending))
  }

  /**
   * Runs one request in a savepoint. A refused request (bad SQL policy, a schema Tandem cannot
   * replicate) is rolled back whole and rejected; SQL errors are per-statement results.
   */
  private runRequest(pending: Pending): void {
    if ('internal' in pending.request) return this.runInternal(pending, pending.request)
    const request = pending.request
    const { statements } = request
    // One statement alone is all-or-nothing either way: the request's savepoint is enough.
    const transaction = request.transaction || statements.length === 1
    const splits = statements.map((s) => this.options.writer.statements.split(s.sql))
    // A request that changes the schema starts a fresh run of ops, so every op past its mark is
    // its own and a rollback can drop exactly those.
    if (splits.some(holdsDdl)) this.capture.flush()
    const mark = this.capture.mark()
    const internal = this.internal
    internal('SAVEPOINT request')
    const results: StatementResult[] = []
    let current = -1
    try {
      const key = request.idempotency
      const stored = key === undefined ? undefined : this.options.writer.policy.internally(() => this.idempotency.lookup(key.key, key.hash))
      if (stored !== undefined) {
        internal('RELEASE request')
        pending.results = stored.results
        pending.replayedLsn = stored.lsn
        return
      }
      for (let i = 0; i < statements.length; i++) {
        current = i
        const statement = statements[i]!
        const split = splits[i]!
        if (!transaction) {
          if (holdsDdl(split)) this.capture.flush()
          const statementMark = this.capture.mark()
          internal('SAVEPOINT statement')
          const result = this.runStatement(pending, i, statement, split)
          if (result.kind === 'error') {
            internal('ROLLBACK TO statement')
            this.capture.rollbackTo(statementMark)
          }
          internal('RELEASE statement')
          results.push(result)
        } else {
          const result = this.runStatement(pending, i, statement, split)
          results.push(result)
          if (result.kind === 'error') {
            internal('ROLLBACK TO request')
            this.capture.rollbackTo(mark)
            break
          }
        }
      }
      if (key !== undefined) {
        // This request's changes, and this record, go in the entry the batch is about to append.
        const outcome = { lsn: this.lsn + 1, results }
        this.options.writer.policy.internally(() => this.idempotency.record(key.key, key.hash, outcome, this.options.clock.now()))
      }
      internal('RELEASE request')
      pending.results = results
    } catch (error) {
      if (error instanceof TransactionLost) {
        ;(pending.stopped ??= new Map()).set(current, error.error)
        throw error
      }
      if (!this.options.writer.connection.isTransaction) throw error
      internal('ROLLBACK TO request')
      internal('RELEASE request')
      this.capture.rollbackTo(mark)
      pending.error = error
    }
  }

  private runInternal(pending: Pending, request: InternalWrite): void {
    const { connection, policy } = this.options.writer
    const mark = this.capture.mark()
    this.internal('SAVEPOINT request')
    try {
      policy.internally(() => request.internal(connection))
      this.internal('RELEASE request')
      pending.results = []
    } catch (error) {
      this.internal('ROLLBACK TO request')
      this.internal('RELEASE request')
      this.capture.rollbackTo(mark)
      pending.error = error
    }
  }

  /** Runs one of Tandem's own transaction-control statements, prepared once. */
  private readonly internal = (sql: string): void => {
    const { connection, policy } = this.options.writer
    policy.internally(() => {
      let statement = this.internalStatements.get(sql)
      if (statement === undefined) {
        statement = connection.prepare(sql)
        this.internalStatements.set(sql, statement)
      }
      statement.run()
    })
  }

  private readonly internalStatements = new Map<string, Statement>()

  private runStatement(pending: Pending, index: number, statement: SqlStatement, split: SplitStatement[]): StatementResult {
    const { connection, policy, watched } = this.options.writer
    const stoppedBefore = pending.stopped?.get(index)
    if (stoppedBefore !== undefined) return { kind: 'error', error: stoppedBefore }
    const started = performance.now()
    let result: StatementResult | undefined
    try {
      // The common case, one statement that is not DDL, without the generator's cost.
      if (split.length === 1 && !isDdlKeyword(split[0]!.keyword)) {
        const part = prepareClientPart(this.options.writer, split[0]!, true)
        if (!part.observation.isDdl) {
          result = runPrepared(part.statement, statement.params)
          result.timeSec = (performance.now() - started) / 1000
          return result
        }
      }
      for (const part of prepareClientStatements(this.options.writer, statement.sql, statement.params !== undefined, split)) {
        const params = part.isLast ? statement.params : undefined
        if (!part.observation.isDdl || !isDdlKeyword(part.keyword)) {
          result = runPrepared(part.statement, params)
          continue
        }
        this.capture.beforeDdl()
        result = runPrepared(part.statement, params)
        if (result.kind === 'exec') result = withoutCounts(result)
        const missing = policy.internally(() => tablesWithoutPrimaryKey(connection))
        if (missing.length > 0) {
          throw new TandemError(
            'SCHEMA_REFUSED',
            `table ${missing.join(', ')} has no PRIMARY KEY: Tandem replicates row changes by key, so every table needs one (add a PRIMARY KEY or an INTEGER PRIMARY KEY column)`,
            { tables: missing },
          )
        }
        this.capture.afterDdl(part.sql)
      }
    } catch (error) {
      if (error instanceof TandemError && error.code !== 'BAD_REQUEST') throw error
      const stopped = watched?.stopReasonOf(error)
      if (stopped === 'stopping') throw new TandemError('SHUTTING_DOWN', 'the master is stopping: nothing of the request was applied')
      if (stopped === 'time-limit' || stopped === 'result-too-large') {
        const message = stopped === 'time-limit' ? executeTimeoutError : resultTooLargeError()
        if (!connection.isTransaction) throw new TransactionLost(message)
        return { kind: 'error', error: message, timeSec: (performance.now() - started) / 1000 }
      }
      return { kind: 'error', error: messageOf(error), timeSec: (performance.now() - started) / 1000 }
    }
    assert(result !== undefined, 'a statement text holds at least one statement')
    result.timeSec = (performance.now() - started) / 1000
    return result
  }
}
