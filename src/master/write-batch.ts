/**
 * One group-committed write transaction: the requests of a batch, each in a savepoint of its own
 * so it stays all-or-nothing, one session recording their row changes, and the log entry holding
 * those changes appended before COMMIT, in the same transaction, so data and log never disagree.
 *
 * The master's write pipeline runs batches on its event loop; a request that needs more than the
 * loop's budget runs alone, in a batch of one, on the long-write thread (long-write-worker.ts)
 * with a connection of its own. Both run this code.
 */
import { assert } from '../shared/assert.ts'
import type { Clock } from '../shared/clock.ts'
import { TandemError, messageOf } from '../shared/errors.ts'
import { createEntry, encodeOps, type LogEntry } from '../replication-log/log-entry.ts'
import type { LogStore } from '../replication-log/log-store.ts'
import { IdempotencyStore } from './idempotency.ts'
import { ClientCounters } from './client-counters.ts'
import { attachSource, copyDatabase, runDump, type LoadSource, type LoadSummary } from './database-load.ts'
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
  replicationRefusal,
  isCorruption,
  type GuardedConnection,
  type Connection,
  type Observation,
  type SchemaGeneration,
  type SqlParams,
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
  /** Runs in a batch of its own: its entry holds its changes only (an anti-entropy check). */
  alone?: boolean
}

/** A request in a batch, and what running it gave. */
export interface BatchItem {
  request: WriteRequest | InternalWrite
  results?: StatementResult[] | undefined
  /** Set when an idempotent request is answered from its first run. */
  replayedLsn?: number | undefined
  error?: unknown
  /** Statements stopped (past their time limit, their result too large): answered with the error when the batch runs again. */
  stopped?: Map<number, string> | undefined
}

export type BatchOutcome =
  /** `ran`: how many of the batch's items it holds; the rest were left for another batch (the budget ran out). */
  | { kind: 'committed'; entry: LogEntry | undefined; ran: number }
  /** Rolled back: a stopped statement took the transaction with it; run the batch again (its items remember what stopped). */
  | { kind: 'again' }
  /** Rolled back: its entry would be larger than replication carries. */
  | { kind: 'oversized'; bytes: number }
  /** Rolled back: `item` needs more than the event loop's budget; it runs elsewhere, the rest again. */
  | { kind: 'too-long'; item: BatchItem }

export interface WriteBatchOptions {
  writer: GuardedConnection
  log: LogStore
  /** Moved around the COMMIT of every batch that changed the schema (see SchemaGeneration). */
  schema: SchemaGeneration
  clock: Clock
  /** Largest entry committed (shared/limits.ts). */
  entryBytesMax: number
  /**
   * The event loop's budget: a client statement is stopped past it (the limit in force during a
   * batch), and a request or batch that has run this long takes nothing more. Undefined: none
   * (the long-write thread).
   */
  budget?: { ms: number; nodeLimitMs: number } | undefined
}

/** A statement stopped: SQLite rolled back the whole transaction, the batch's other requests with it. */
class TransactionLost extends Error {
  readonly error: string
  constructor(error: string) {
    super('a stopped statement rolled back the batch')
    this.error = error
  }
}

/** A request past the event loop's budget: it runs on the long-write thread instead. */
class TooLong extends Error {
  constructor() {
    super('the request needs more than the event loop gives a write')
  }
}

export class WriteBatch {
  private readonly capture: ChangeCapture
  private readonly idempotency: IdempotencyStore
  private readonly counters: ClientCounters
  private readonly options: WriteBatchOptions
  /** The LSN the batch under way will commit. */
  private lsn = 0
  private batchStarted = 0

  constructor(options: WriteBatchOptions) {
    this.options = options
    this.capture = new ChangeCapture(options.writer.connection, (fn) => options.writer.policy.internally(fn))
    this.idempotency = options.writer.policy.internally(() => new IdempotencyStore(options.writer.connection))
    this.counters = new ClientCounters(options.writer.connection, (fn) => options.writer.policy.internally(fn))
  }

  /** Another connection committed (the long-write thread): what the capture remembers of the database is stale. */
  forgetCache(): void {
    this.capture.abort()
  }

  /**
   * Runs `items` in one transaction that commits entry `lsn` of `epoch`, following the entry
   * whose history hash is `previousHash`, when they change anything. Throws when the transaction
   * cannot commit (a full disk, say) or the node is stopping (SHUTTING_DOWN): then nothing of it
   * is applied.
   */
  run(items: readonly BatchItem[], lsn: number, epoch: number, previousHash: Uint8Array | null): BatchOutcome {
    // The budget holds for the whole batch: two calls into SQLite per batch, none per request.
    const { watched } = this.options.writer
    const { budget } = this.options
    if (watched === undefined || budget === undefined) return this.runBatch(items, lsn, epoch, previousHash)
    return watched.withLimit(budget.ms, () => this.runBatch(items, lsn, epoch, previousHash))
  }

  private runBatch(items: readonly BatchItem[], lsn: number, epoch: number, previousHash: Uint8Array | null): BatchOutcome {
    this.lsn = lsn
    this.batchStarted = performance.now()
    let ran = 0
    try {
      this.internal('BEGIN IMMEDIATE')
      // The previous batch appended its log entry: SQLite's last insert rowid is that entry's LSN.
      this.counters.markStale()
      this.capture.begin()
      for (const item of items) {
        if (ran > 0 && this.isPastBudget(this.batchStarted)) break
        this.runLimited(item)
        ran++
      }
      const ops = this.capture.finish()
      let entry: LogEntry | undefined
      if (ops.length > 0) {
        const encoded = encodeOps(ops)
        if (encoded.length > this.options.entryBytesMax) {
          this.rollback()
          return { kind: 'oversized', bytes: encoded.length }
        }
        entry = createEntry(lsn, epoch, this.options.clock.now(), encoded, previousHash)
        this.appendEntry(entry)
      }
      // Every schema change a batch keeps is a DDL op (the capture records each one it runs).
      if (ops.some((op) => op.kind === 'ddl')) this.options.schema.changing(() => this.internal('COMMIT'))
      else this.internal('COMMIT')
      return { kind: 'committed', entry, ran }
    } catch (error) {
      this.rollback()
      if (error instanceof TransactionLost) return { kind: 'again' }
      if (error instanceof TooLong) return { kind: 'too-long', item: items[ran]! }
      throw error
    }
  }

  /**
   * A load (database-load.ts) in one transaction that appends entry `lsn`, an entry of one `load`
   * op: a SQLite file replaces the database; SQL text (as sqlite3 .dump writes it) runs on top of
   * it, as rqlite runs it. Throws, having changed nothing, when it cannot be loaded.
   */
  load(source: LoadSource, lsn: number, epoch: number, previousHash: Uint8Array | null): { entry: LogEntry; summary: LoadSummary; results: StatementResult[] } {
    const { connection, policy } = this.options.writer
    // SQLite attaches outside transactions only.
    const attached = 'file' in source ? policy.internally(() => attachSource(connection, source.file)) : undefined
    try {
      this.internal('BEGIN IMMEDIATE')
      try {
        let summary: LoadSummary = { tables: 0, rows: 0, indexes: 0, views: 0, triggers: 0 }
        let results: StatementResult[] = []
        if (attached !== undefined) summary = this.ownStatements(() => copyDatabase(this.options.writer))
        else results = runDump(this.options.writer, (source as { sql: string }).sql)
        const refusal = policy.internally(() => replicationRefusal(connection))
        if (refusal !== undefined) throw new TandemError('SCHEMA_REFUSED', `${refusal}; nothing was loaded`)
        const entry = createEntry(lsn, epoch, this.options.clock.now(), encodeOps([{ kind: 'load' }]), previousHash)
        policy.internally(() => this.options.log.append(entry))
        this.options.schema.changing(() => this.internal('COMMIT'))
        return { entry, summary, results }
      } catch (error) {
        if (connection.isTransaction) this.internal('ROLLBACK')
        if (error instanceof TandemError) throw error
        throw new TandemError('BAD_REQUEST', `the database could not be loaded, and nothing of it was: ${messageOf(error)}`)
      }
    } finally {
      this.capture.abort()
      this.counters.markStale()
      if (attached !== undefined) policy.internally(() => attached.detach())
    }
  }

  /** A client statement that is not DDL; a write answers the counters clients see (client-counters.ts). */
  private runCounted(part: { statement: Statement; observation: Observation }, params: SqlParams | undefined): StatementResult {
    if (!part.observation.isWrite) return runPrepared(part.statement, params)
    this.counters.beforeWrite()
    let result: StatementResult
    try {
      result = runPrepared(part.statement, params)
    } catch (error) {
      if (this.options.writer.connection.isTransaction) this.counters.failed()
      throw error
    }
    if (result.kind === 'exec') return this.counters.wrote(result)
    this.counters.wroteRows()
    return result
  }

  /** Tandem's own statements, past the connection's time limit (they copy a whole file). */
  private ownStatements<T>(fn: () => T): T {
    const { watched } = this.options.writer
    return watched === undefined ? fn() : watched.exempt(fn)
  }

  private rollback(): void {
    this.capture.abort()
    if (this.options.writer.connection.isTransaction) this.internal('ROLLBACK')
  }

  private isPastBudget(since: number): boolean {
    const { budget } = this.options
    return budget !== undefined && performance.now() - since > budget.ms
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

  /** The request's own statement limit (rqlite's db_timeout), against the node's. */
  private limitOf(item: BatchItem): number {
    const requested = 'internal' in item.request ? undefined : item.request.limitMs
    return effectiveLimitMs(requested, this.options.budget?.nodeLimitMs ?? this.options.writer.watched?.defaultLimitMs ?? 0)
  }

  /**
   * runRequest() under the statement limit it gets here: its own (db_timeout, the node's) on
   * the long-write thread; on the event loop the budget, unless its own is lower.
   */
  private runLimited(item: BatchItem): void {
    const { watched } = this.options.writer
    const { budget } = this.options
    if (watched === undefined) return this.runRequest(item)
    // Tandem's own writes (a job's 100,000 tasks, say) are not client SQL: no budget stops them.
    if ('internal' in item.request) return budget === undefined ? this.runRequest(item) : watched.exempt(() => this.runRequest(item))
    const own = this.limitOf(item)
    const ms = budget === undefined || (own !== 0 && own <= budget.ms) ? own : budget.ms
    watched.withLimit(ms, () => this.runRequest(item))
  }

  /**
   * Runs one request in a savepoint. A refused request (bad SQL policy, a schema Tandem cannot
   * replicate) is rolled back whole and rejected; SQL errors are per-statement results.
   */
  private runRequest(item: BatchItem): void {
    if ('internal' in item.request) return this.runInternal(item, item.request)
    const request = item.request
    const { statements } = request
    const started = performance.now()
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
        item.results = stored.results
        item.replayedLsn = stored.lsn
        return
      }
      for (let i = 0; i < statements.length; i++) {
        if (i > 0 && this.isPastBudget(started)) throw new TooLong()
        current = i
        const statement = statements[i]!
        const split = splits[i]!
        if (!transaction) {
          if (holdsDdl(split)) this.capture.flush()
          const statementMark = this.capture.mark()
          internal('SAVEPOINT statement')
          const result = this.runStatement(item, i, statement, split)
          if (result.kind === 'error') {
            internal('ROLLBACK TO statement')
            this.capture.rollbackTo(statementMark)
          }
          internal('RELEASE statement')
          results.push(result)
        } else {
          const result = this.runStatement(item, i, statement, split)
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
        const outcome = { lsn: this.lsn, results }
        this.options.writer.policy.internally(() => this.idempotency.record(key.key, key.hash, outcome, this.options.clock.now()))
      }
      internal('RELEASE request')
      item.results = results
    } catch (error) {
      if (error instanceof TransactionLost) {
        ;(item.stopped ??= new Map()).set(current, error.error)
        throw error
      }
      if (error instanceof TooLong) throw error
      if (!this.options.writer.connection.isTransaction) throw error
      internal('ROLLBACK TO request')
      internal('RELEASE request')
      this.capture.rollbackTo(mark)
      item.error = error
    }
  }

  private runInternal(item: BatchItem, request: InternalWrite): void {
    const { connection, policy } = this.options.writer
    const mark = this.capture.mark()
    this.internal('SAVEPOINT request')
    this.counters.markStale()
    try {
      policy.internally(() => request.internal(connection))
      this.internal('RELEASE request')
      item.results = []
    } catch (error) {
      this.internal('ROLLBACK TO request')
      this.internal('RELEASE request')
      this.capture.rollbackTo(mark)
      item.error = error
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

  private runStatement(item: BatchItem, index: number, statement: SqlStatement, split: SplitStatement[]): StatementResult {
    const { connection, policy, watched } = this.options.writer
    const stoppedBefore = item.stopped?.get(index)
    if (stoppedBefore !== undefined) return { kind: 'error', error: stoppedBefore }
    const started = performance.now()
    let result: StatementResult | undefined
    try {
      // The common case, one statement that is not DDL, without the generator's cost.
      if (split.length === 1 && !isDdlKeyword(split[0]!.keyword)) {
        const part = prepareClientPart(this.options.writer, split[0]!, true, statement.params)
        if (!part.observation.isDdl) {
          result = this.runCounted(part, statement.params)
          result.timeSec = (performance.now() - started) / 1000
          return result
        }
      }
      for (const part of prepareClientStatements(this.options.writer, statement.sql, statement.params, split)) {
        const params = part.isLast ? statement.params : undefined
        if (!part.observation.isDdl || !isDdlKeyword(part.keyword)) {
          result = this.runCounted(part, params)
          continue
        }
        this.capture.beforeDdl()
        result = runPrepared(part.statement, params)
        if (result.kind === 'exec') result = this.counters.unchanged()
        const refusal = policy.internally(() => replicationRefusal(connection))
        if (refusal !== undefined) throw new TandemError('SCHEMA_REFUSED', refusal)
        this.capture.afterDdl(part.sql)
      }
    } catch (error) {
      if (error instanceof TandemError && error.code !== 'BAD_REQUEST') throw error
      // A damaged file is the master's problem, not the request's: the batch fails whole, and
      // the pipeline stops taking writes (WritePipeline.damage).
      if (isCorruption(error)) throw error
      const stopped = watched?.stopReasonOf(error)
      if (stopped === 'stopping' || stopped === 'cancelled') throw new TandemError('SHUTTING_DOWN', 'the master is stopping: nothing of the request was applied')
      if (stopped === 'time-limit' && this.stoppedByBudget(item)) throw new TooLong()
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

  /** Was a statement stopped by the event loop's budget, rather than by its own limit? */
  private stoppedByBudget(item: BatchItem): boolean {
    const { budget } = this.options
    if (budget === undefined) return false
    const own = this.limitOf(item)
    return own === 0 || own > budget.ms
  }
}
