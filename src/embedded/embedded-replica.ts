/**
 * An embedded replica: a Tandem replica inside the application's own process. It follows the
 * master exactly as a `tandem replica` process does (the same ReplicaRole: apply connection,
 * follower, snapshot bootstrap, log retention), but it serves no HTTP: the application reads the
 * local SQLite file directly and synchronously, and its writes go to the master over HTTP.
 *
 * Consistency, in the application's terms:
 * - A read never waits for the network and never sees half an entry. Entries are applied on this
 *   same thread, so every read in one synchronous stretch of code (no `await` between them) sees
 *   one state of the database, as if in one read transaction.
 * - Read-your-writes: a write resolves with the master's LSN for it; `waitFor(lsn)` resolves once
 *   this replica has applied that LSN, `sync()` once it has applied everything the master had
 *   committed when `sync()` was called (and everything this replica wrote).
 * - Restart: the position is stored with the data in one transaction; reopening the same
 *   directory resumes streaming from it (a snapshot only if the master no longer has the log).
 * - The master away: reads go on from the local copy; `staleness()` says for how long the master
 *   has been silent; the follower reconnects with backoff and catches up by itself.
 */
import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { systemClock, type Clock } from '../shared/clock.ts'
import { TandemError } from '../shared/errors.ts'
import { createLogger, type Logger } from '../shared/logger.ts'
import type { Position } from '../replication-log/index.ts'
import { databasePath, type SqlParams } from '../storage/index.ts'
import { defaultConfig } from '../node/config.ts'
import { loadNodeId } from '../node/node-identity.ts'
import { LsnWaiters } from '../node/lsn-waiters.ts'
import { ReplicaRole } from '../node/replica-role.ts'
import { DirectoryLock } from './directory-lock.ts'
import { SqlError } from './errors.ts'
import { LocalRows, type Row } from './local-rows.ts'
import { MasterClient, type WriteOptions, type WriteStatement } from './master-client.ts'
import type { ReplicaOptions, ReplicaStatus, Staleness, WaitOptions } from './replica-options.ts'
import type { BatchResult, ExecuteResult, StatementResult, WriteCallOptions } from './write-results.ts'

const waitTimeoutMsDefault = 5000

export class EmbeddedReplica {
  readonly nodeId: string
  readonly path: string
  private readonly master: MasterClient
  private readonly role: ReplicaRole
  private readonly lock: DirectoryLock
  private readonly logger: Logger
  private readonly ownsLogger: boolean
  private readonly clock: Clock
  private readonly dbPath: string
  /** Undefined once closed (and, invisibly to callers, inside a synchronous snapshot swap). */
  private rows: LocalRows | undefined
  private readonly waiters = new LsnWaiters()
  /** Rejecters of waits in progress, so close() can end them. */
  private readonly waits = new Set<(error: Error | undefined) => void>()
  /** The highest LSN a write through this replica was answered with. */
  private writtenLsn = 0
  private closing: Promise<void> | undefined
  private readonly signal: AbortSignal | undefined
  private readonly onAbort = () => void this.close()

  private constructor(options: ReplicaOptions) {
    if (typeof options.path !== 'string' || options.path === '') throw new TandemError('BAD_REQUEST', 'openReplica needs `path`, the directory to keep the replica in')
    this.master = new MasterClient(options.master, options.requestTimeoutMs ?? 30_000)
    this.path = options.path
    mkdirSync(options.path, { recursive: true })
    this.lock = DirectoryLock.acquire(options.path)
    let role: ReplicaRole | undefined
    try {
      this.nodeId = loadNodeId(options.path)
      this.clock = options.clock ?? systemClock
      this.ownsLogger = options.logger === undefined
      this.logger = options.logger ?? createLogger(`embedded-${this.nodeId}`, process.env['TANDEM_LOG_LEVEL'] ?? 'warn')
      this.dbPath = databasePath(options.path)
      const config = { ...defaultConfig, role: 'replica' as const, dataDir: options.path, port: 0, masterUrl: this.master.url, synchronous: options.synchronous ?? 'normal' }
      // The master lists this replica in /nodes under this URL; it serves nothing there.
      const url = `embedded://${hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost'}/${process.pid}`
      this.role = role = new ReplicaRole(config, this.dbPath, this.nodeId, () => url, this.clock, this.logger, {
        // Both run synchronously around the file swap: no read can run in between.
        before: () => {
          this.rows?.close()
          this.rows = undefined
        },
        after: () => {
          if (this.closing !== undefined) return
          this.rows = new LocalRows(this.dbPath)
          this.waiters.reached(this.role.applier.position.lsn)
        },
      })
      this.rows = new LocalRows(this.dbPath)
    } catch (error) {
      // Not started: closing only closes its apply connection and timer.
      void role?.close().finally(() => this.lock.release())
      if (role === undefined) this.lock.release()
      void this.master.close()
      throw error
    }
    this.role.follower.on('applied', (lsn) => this.waiters.reached(lsn))
    this.waiters.reached(this.role.applier.position.lsn)
    this.signal = options.signal
    this.signal?.addEventListener('abort', this.onAbort, { once: true })
    this.role.start()
  }

  /** Use openReplica(). */
  static async open(options: ReplicaOptions): Promise<EmbeddedReplica> {
    options.signal?.throwIfAborted()
    const replica = new EmbeddedReplica(options)
    try {
      await replica.firstCopy(options.openTimeoutMs ?? 30_000, options.signal)
    } catch (error) {
      await replica.close()
      throw options.signal?.aborted === true ? asError(options.signal.reason) : error
    }
    return replica
  }

  // ── reads: local, synchronous ───────────────────────────────────────────────

  /** Every row of one read-only statement, from the local copy. */
  query<T = Row>(sql: string, params?: SqlParams): T[] {
    return this.openRows().all<T>(sql, params)
  }

  /** The first row, or undefined. */
  get<T = Row>(sql: string, params?: SqlParams): T | undefined {
    return this.openRows().get<T>(sql, params)
  }

  /** The (epoch, LSN) this replica has applied. */
  get position(): Position {
    const { epoch, lsn } = this.role.applier.position
    return { epoch, lsn }
  }

  staleness(): Staleness {
    const follower = this.role.follower
    return {
      connected: follower.state === 'streaming',
      sinceContactMs: follower.lastContactAt === 0 ? undefined : Math.max(0, this.clock.now() - follower.lastContactAt),
      lagEntries: Math.max(0, follower.masterLsn - this.role.applier.position.lsn),
    }
  }

  status(): ReplicaStatus {
    const follower = this.role.follower
    return {
      ...this.staleness(),
      nodeId: this.nodeId,
      masterUrl: this.master.url,
      path: this.path,
      position: this.position,
      state: follower.state,
      masterLsn: follower.masterLsn,
      snapshotsInstalled: follower.snapshotsInstalled,
      lastProblem: follower.lastProblem,
    }
  }

  // ── writes: on the master ───────────────────────────────────────────────────

  /**
   * Runs SQL on the master, atomically: a text holding several statements applies all of them or
   * none. Throws SqlError if it failed in SQLite (nothing applied); see batch() for the rest.
   */
  async execute(sql: string, params?: SqlParams, options: WriteCallOptions = {}): Promise<ExecuteResult> {
    const { results, ...ack } = await this.batch([params === undefined ? { sql } : { sql, params }], { ...options, transaction: true })
    const [result] = results
    if (result === undefined) throw new TandemError('INTERNAL', `the master answered a one-statement write with ${results.length} results`)
    return { ...result, ...ack }
  }

  /**
   * Runs statements on the master in one request: with `transaction` (the default) all apply or
   * none does; without it each stands alone. Resolves once the master committed it (read it
   * back here with `waitFor(result.lsn)`). Throws:
   * - SqlError when a statement failed in SQLite (`rolledBack`, `results` and `lsn` say what stands);
   * - a TandemError with the master's code when it refused the request (nothing applied),
   *   NO_MASTER when it could not be reached (nothing applied), SYNC_TIMEOUT when it committed
   *   the write but too few replicas confirmed it (applied: do not repeat it);
   * - IndeterminateWriteError when the answer was lost (it may have been applied), after
   *   retrying with the idempotency key if the call has one (repeating with it is safe).
   */
  async batch(statements: readonly (string | WriteStatement)[], options: WriteCallOptions & { transaction?: boolean } = {}): Promise<BatchResult> {
    this.assertOpen()
    if (statements.length === 0) throw new TandemError('BAD_REQUEST', 'no statements to write')
    const transaction = options.transaction ?? true
    const writeOptions: WriteOptions = { transaction }
    if (options.idempotencyKey !== undefined) writeOptions.idempotencyKey = options.idempotencyKey
    if (options.sync !== undefined) writeOptions.sync = options.sync
    if (options.syncTimeoutMs !== undefined) writeOptions.syncTimeoutMs = options.syncTimeoutMs
    const reply = await this.master.execute(statements.map((s) => (typeof s === 'string' ? { sql: s } : s)), writeOptions)
    // The master's LSN when it answered: sync() waits for it, so reads after it are monotonic.
    this.writtenLsn = Math.max(this.writtenLsn, reply.lsn)
    const { results, lsn } = reply
    const failed = results.findIndex((r) => 'error' in r)
    const rolledBack = failed >= 0 && transaction
    const isApplied = !rolledBack && results.some((r) => !('error' in r))
    if (reply.syncTimeout !== undefined && isApplied) {
      throw new TandemError('SYNC_TIMEOUT', reply.syncTimeout, { lsn, results, sync: reply.sync, masterUrl: this.master.url })
    }
    if (failed >= 0) {
      const message = (results[failed] as { error: string }).error
      throw new SqlError(results.length > 1 ? `statement ${failed}: ${message}` : message, {
        statementIndex: failed,
        results,
        rolledBack,
        ...(isApplied ? { lsn } : {}),
      })
    }
    const done: BatchResult = { results: results as StatementResult[], lsn, replayed: reply.replayed }
    if (reply.sync !== undefined) done.sync = reply.sync
    return done
  }

  // ── waiting for the master's writes ─────────────────────────────────────────

  /** Resolves once this replica has applied `lsn`; MIN_LSN_TIMEOUT after `timeoutMs`. */
  waitFor(lsn: number, options: WaitOptions = {}): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new TandemError('SHUTTING_DOWN', 'the embedded replica is closed'))
    if (!Number.isSafeInteger(lsn) || lsn < 0) return Promise.reject(new TandemError('BAD_REQUEST', `an LSN is a non-negative integer, not ${lsn}`))
    const timeoutMs = options.timeoutMs ?? waitTimeoutMsDefault
    const current = this.role.applier.position.lsn
    if (current >= lsn) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const end = (error: Error | undefined) => {
        this.waits.delete(end)
        if (error === undefined) resolve()
        else reject(error)
      }
      this.waits.add(end)
      this.waiters.wait(current, lsn, timeoutMs).then(
        () => end(undefined),
        (error: Error) => end(error),
      )
    })
  }

  /**
   * Resolves once this replica has applied everything the master had committed when sync() was
   * called, and every write made through it; returns the position reached. Asks the master for
   * its LSN: NO_MASTER if it cannot be reached, MIN_LSN_TIMEOUT if applying takes too long.
   */
  async sync(options: WaitOptions = {}): Promise<Position> {
    this.assertOpen()
    const timeoutMs = options.timeoutMs ?? waitTimeoutMsDefault
    const started = this.clock.now()
    const masterLsn = await this.master.lsn(timeoutMs)
    const remainingMs = Math.max(0, timeoutMs - (this.clock.now() - started))
    await this.waitFor(Math.max(masterLsn, this.writtenLsn), { timeoutMs: remainingMs })
    return this.position
  }

  /** Stops following and closes the files. Waits in progress reject with SHUTTING_DOWN. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown()
    return this.closing
  }

  private async shutDown(): Promise<void> {
    this.signal?.removeEventListener('abort', this.onAbort)
    this.rows?.close()
    this.rows = undefined
    const stopping = new TandemError('SHUTTING_DOWN', 'the embedded replica was closed')
    for (const end of [...this.waits]) end(stopping)
    this.waiters.clear()
    try {
      await this.role.close()
      await this.master.close()
    } finally {
      this.lock.release()
      if (this.ownsLogger) this.logger.flush()
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new TandemError('SHUTTING_DOWN', 'the embedded replica is closed')
  }

  private openRows(): LocalRows {
    if (this.rows !== undefined) return this.rows
    this.assertOpen()
    throw new TandemError('NOT_READY', 'the local database could not be reopened after installing a snapshot; see the log')
  }

  /**
   * An empty directory (LSN 0: never copied anything) waits for its first copy of the master;
   * a directory with data opens at once and catches up in the background.
   *
   * Why refuse to open empty when the master cannot be reached, rather than open and serve an
   * empty database: there is nothing to serve. Every read would fail with "no such table", which
   * reads as a bug in the application rather than what it is, a missing master; and the
   * application could not tell an empty replica from an empty cluster. Rejecting with NO_MASTER
   * says what happened, at the one moment the application is prepared to handle it (startup),
   * and it can retry. Once a replica holds data it always opens, whatever the master's state.
   */
  private async firstCopy(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.role.applier.position.lsn > 0) return
    const follower = this.role.follower
    const started = this.clock.now()
    // The follower retries a URL that is not a master's forever; ask once, to say so at once.
    const notMaster = this.master.lsn(timeoutMs).then(
      () => undefined,
      (error: unknown) => (error instanceof TandemError && error.code === 'NOT_MASTER' ? error : undefined),
    )
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => finish(() => reject(new TandemError('NO_MASTER', `${this.path} holds no copy of the database yet, and the master at ${this.master.url} did not answer within ${timeoutMs} ms; retry when it is up`, { masterUrl: this.master.url }))),
        timeoutMs,
      )
      let isDone = false
      const onState = () => {
        if (follower.state === 'streaming') finish(resolve)
      }
      const onAbort = () => finish(() => reject(asError(signal?.reason)))
      const finish = (settle: () => void) => {
        if (isDone) return
        isDone = true
        clearTimeout(timer)
        follower.off('state', onState)
        signal?.removeEventListener('abort', onAbort)
        settle()
      }
      void notMaster.then((error) => {
        if (error !== undefined) finish(() => reject(error))
      })
      follower.on('state', onState)
      signal?.addEventListener('abort', onAbort, { once: true })
      onState()
    })
    // Streaming: the master said its LSN in its welcome. Apply up to it before opening.
    const remainingMs = Math.max(0, timeoutMs - (this.clock.now() - started))
    try {
      await this.waitFor(follower.masterLsn, { timeoutMs: remainingMs })
    } catch (error) {
      if (error instanceof TandemError && error.code === 'MIN_LSN_TIMEOUT') {
        throw new TandemError('NOT_READY', `${this.path} is still copying the master (LSN ${this.position.lsn} of ${follower.masterLsn}) after ${timeoutMs} ms; raise openTimeoutMs`, { cause: error })
      }
      throw error
    }
  }
}

/** Opens (or creates) the embedded replica in `options.path`, following `options.master`. */
export function openReplica(options: ReplicaOptions): Promise<EmbeddedReplica> {
  return EmbeddedReplica.open(options)
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason))
}
