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
 * - Writes go through the client library (master-connection.ts): its retry rules, its results,
 *   and its errors. Every failure, local or remote, is a TandemClientError (as-client-error.ts).
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
import { TandemClientError, isTandemClientError, type BatchResult, type ExecResult, type Statement, type WriteOptions } from '../client/index.ts'
import { systemClock, type Clock } from '../shared/clock.ts'
import { createLogger, type Logger } from '../shared/logger.ts'
import type { Position } from '../replication-log/index.ts'
import { SchemaGeneration, databasePath, type ValueParams } from '../storage/index.ts'
import { defaultConfig } from '../node/config.ts'
import { loadNodeId } from '../node/node-identity.ts'
import { LsnWaiters } from '../node/lsn-waiters.ts'
import { ReplicaRole } from '../node/replica-role.ts'
import { ClusterId, ClusterSecret, PeerCredentials } from '../security/index.ts'
import { asClientError } from './as-client-error.ts'
import { DirectoryLock } from './directory-lock.ts'
import { LocalRows, type Row } from './local-rows.ts'
import { MasterConnection } from './master-connection.ts'
import type { ReplicaOptions, ReplicaStatus, Staleness, WaitOptions } from './replica-options.ts'

const waitTimeoutMsDefault = 5000

export class EmbeddedReplica {
  readonly nodeId: string
  readonly path: string
  private readonly master: MasterConnection
  /** How the master lists this replica in /nodes (it serves nothing there). */
  private readonly url: string
  private readonly role: ReplicaRole
  private readonly lock: DirectoryLock
  /** What the replica presents to its master when it streams: the secret's token or the user's credentials, and TLS. */
  private readonly peers: PeerCredentials
  private readonly logger: Logger
  private readonly ownsLogger: boolean
  private readonly clock: Clock
  private readonly dbPath: string
  /** Undefined once closed (and, invisibly to callers, inside a synchronous snapshot swap). */
  private rows: LocalRows | undefined
  private readonly waiters = new LsnWaiters()
  /** Rejecters of waits in progress, so close() can end them. */
  private readonly waits = new Set<(error: Error | undefined) => void>()
  private closing: Promise<void> | undefined
  private readonly signal: AbortSignal | undefined
  private readonly onAbort = () => void this.close()

  private constructor(options: ReplicaOptions) {
    if (typeof options.path !== 'string' || options.path === '') throw new TandemClientError('BAD_REQUEST', 'openReplica needs `path`, the directory to keep the replica in')
    // Checks the URL before anything is created; connects later (see the end of the constructor).
    this.master = new MasterConnection(options.master, options.requestTimeoutMs ?? 30_000, (fields, message) => this.logger.warn(fields, message), {
      ...(options.auth === undefined ? {} : { auth: options.auth }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    })
    const peers = new PeerCredentials({
      ...(options.clusterSecret === undefined ? {} : { secret: new ClusterSecret(options.clusterSecret.trim()) }),
      ...(this.master.auth === undefined ? {} : { authorization: basicAuthorization(this.master.auth) }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    })
    this.peers = peers
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
      this.url = `embedded://${hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost'}/${process.pid}`
      const config = { ...defaultConfig, role: 'replica' as const, dataDir: options.path, port: 0, masterUrl: this.master.url, synchronous: options.synchronous ?? 'normal' }
      // Its reads (LocalRows) ask SQLite for a statement's columns on every run: nothing reads the generation.
      this.role = role = new ReplicaRole(config, this.dbPath, this.nodeId, () => this.url, this.clock, this.logger, new SchemaGeneration(), {
        // Both run synchronously around the file swap: no read can run in between.
        before: () => {
          this.rows?.close()
          this.rows = undefined
        },
        after: () => {
          if (this.closing !== undefined) return
          this.rows = new LocalRows(this.dbPath, this.url)
          this.waiters.reached(this.role.applier.position.lsn)
        },
      }, peers, new ClusterId(options.path))
      this.rows = new LocalRows(this.dbPath, this.url)
    } catch (error) {
      // Not started: closing only closes its apply connection and timer.
      void role?.close().finally(() => this.lock.release())
      if (role === undefined) this.lock.release()
      throw error
    }
    this.role.follower.on('applied', (lsn) => this.waiters.reached(lsn))
    this.waiters.reached(this.role.applier.position.lsn)
    this.signal = options.signal
    this.signal?.addEventListener('abort', this.onAbort, { once: true })
    this.role.start()
    // Connect now, so the first write does not wait for discovery; a failure is retried by the next call.
    void this.master.client().catch(() => undefined)
  }

  /** Use openReplica(). */
  static async open(options: ReplicaOptions): Promise<EmbeddedReplica> {
    options.signal?.throwIfAborted()
    let replica: EmbeddedReplica
    try {
      replica = new EmbeddedReplica(options)
    } catch (error) {
      throw asClientError(error)
    }
    try {
      await replica.firstCopy(options.openTimeoutMs ?? 30_000, options.signal)
    } catch (error) {
      await replica.close()
      throw options.signal?.aborted === true ? asError(options.signal.reason) : asClientError(error)
    }
    return replica
  }

  // ── reads: local, synchronous ───────────────────────────────────────────────

  /** Every row of one read-only statement, from the local copy. */
  query<T = Row>(sql: string, params?: ValueParams): T[] {
    return this.openRows().all<T>(sql, params)
  }

  /** The first row, or undefined. */
  get<T = Row>(sql: string, params?: ValueParams): T | undefined {
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
  async execute(sql: string, params?: ValueParams, options: WriteOptions = {}): Promise<ExecResult> {
    const { results, ...ack } = await this.batch([params === undefined ? { sql } : { sql, params }], { ...options, transaction: true })
    const [result] = results
    if (result === undefined) throw new TandemClientError('BAD_RESPONSE', `the master answered a one-statement write with ${results.length} results`, { node: ack.node })
    return { ...result, ...ack }
  }

  /**
   * Runs statements on the master in one request, through the client library: with
   * `transaction` (the default here) all apply or none does; without it each stands alone.
   * Resolves once the master committed it (read it back here with `waitFor(result.lsn)`).
   * Throws the client's errors (src/client/DESIGN.md has the retry table):
   * - SqlError when a statement failed in SQLite (`rolledBack`, `results` and `lsn` say what stands);
   * - a TandemClientError with the master's code when it refused the request, UNAVAILABLE when
   *   it could not be reached, NOT_MASTER when the URL given is a replica's (nothing applied);
   * - SyncTimeoutError when the master committed it but too few replicas confirmed it (applied:
   *   do not repeat it);
   * - IndeterminateWriteError when the answer was lost (it may have been applied), after
   *   retrying with the idempotency key if the call has one (repeating with it is safe).
   */
  async batch(statements: readonly Statement[], options: WriteOptions & { transaction?: boolean } = {}): Promise<BatchResult> {
    this.assertOpen()
    if (statements.length === 0) throw new TandemClientError('BAD_REQUEST', 'no statements to write')
    const client = await this.master.client()
    return client.batch(statements, { ...options, transaction: options.transaction ?? true })
  }

  // ── waiting for the master's writes ─────────────────────────────────────────

  /** Resolves once this replica has applied `lsn`; MIN_LSN_TIMEOUT after `timeoutMs`. */
  waitFor(lsn: number, options: WaitOptions = {}): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(closedError())
    if (!Number.isSafeInteger(lsn) || lsn < 0) return Promise.reject(new TandemClientError('BAD_REQUEST', `an LSN is a non-negative integer, not ${lsn}`))
    const timeoutMs = options.timeoutMs ?? waitTimeoutMsDefault
    const current = this.role.applier.position.lsn
    if (current >= lsn) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const end = (error: Error | undefined) => {
        this.waits.delete(end)
        if (error === undefined) resolve()
        else reject(asClientError(error))
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
   * its LSN: UNAVAILABLE if it cannot be reached, MIN_LSN_TIMEOUT if applying takes too long.
   */
  async sync(options: WaitOptions = {}): Promise<Position> {
    this.assertOpen()
    const timeoutMs = options.timeoutMs ?? waitTimeoutMsDefault
    const started = this.clock.now()
    const masterLsn = await this.master.lsn(timeoutMs)
    const remainingMs = Math.max(0, timeoutMs - (this.clock.now() - started))
    await this.waitFor(masterLsn, { timeoutMs: remainingMs })
    return this.position
  }

  /** Stops following and closes the files. Waits in progress reject with CLOSED. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown()
    return this.closing
  }

  private async shutDown(): Promise<void> {
    this.signal?.removeEventListener('abort', this.onAbort)
    this.rows?.close()
    this.rows = undefined
    const stopping = closedError()
    for (const end of [...this.waits]) end(stopping)
    this.waiters.clear()
    try {
      await this.role.close()
      await this.master.close()
      await this.peers.close()
    } finally {
      this.lock.release()
      if (this.ownsLogger) this.logger.flush()
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw closedError()
  }

  private openRows(): LocalRows {
    if (this.rows !== undefined) return this.rows
    this.assertOpen()
    throw new TandemClientError('NOT_READY', 'the local database could not be reopened after installing a snapshot; see the log')
  }

  /**
   * An empty directory (LSN 0: never copied anything) waits for its first copy of the master;
   * a directory with data opens at once and catches up in the background.
   *
   * Why refuse to open empty when the master cannot be reached, rather than open and serve an
   * empty database: there is nothing to serve. Every read would fail with "no such table", which
   * reads as a bug in the application rather than what it is, a missing master; and the
   * application could not tell an empty replica from an empty cluster. Rejecting with UNAVAILABLE
   * says what happened, at the one moment the application is prepared to handle it (startup),
   * and it can retry. Once a replica holds data it always opens, whatever the master's state.
   */
  private async firstCopy(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.role.applier.position.lsn > 0) return
    const follower = this.role.follower
    const started = this.clock.now()
    // Connecting the client also says whether the URL is a master's: the follower retries a URL
    // that is not forever, so the answer ends the wait at once. Opening waits for the attempt
    // either way, so writes right after opening do not wait for discovery.
    let isConnectSettled = false
    const notMaster = this.master.client().then(
      () => undefined,
      (error: unknown) => (isTandemClientError(error, 'NOT_MASTER') ? error : undefined),
    )
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => finish(() => reject(new TandemClientError('UNAVAILABLE', `${this.path} holds no copy of the database yet, and the master at ${this.master.url} did not answer within ${timeoutMs} ms; retry when it is up`, { node: this.master.url }))),
        timeoutMs,
      )
      let isDone = false
      const onState = () => {
        if (follower.state === 'streaming' && isConnectSettled) finish(resolve)
      }
      const onAbort = () => finish(() => reject(asError(signal?.reason)))
      // The node itself refused to stream: it is a replica. (The client's topology, read from
      // the master, may not list it yet while it reconnects.)
      const onRefused = (code: string) => {
        if (code === 'NOT_MASTER') finish(() => reject(new TandemClientError('NOT_MASTER', `${this.master.url} is a replica: open the embedded replica on the master's URL`, { node: this.master.url })))
      }
      const finish = (settle: () => void) => {
        if (isDone) return
        isDone = true
        clearTimeout(timer)
        follower.off('state', onState)
        follower.off('refused', onRefused)
        signal?.removeEventListener('abort', onAbort)
        settle()
      }
      void notMaster.then((error) => {
        isConnectSettled = true
        if (error !== undefined) finish(() => reject(error))
        else onState()
      })
      follower.on('state', onState)
      follower.on('refused', onRefused)
      signal?.addEventListener('abort', onAbort, { once: true })
      onState()
    })
    // Streaming: the master said its LSN in its welcome. Apply up to it before opening.
    const remainingMs = Math.max(0, timeoutMs - (this.clock.now() - started))
    try {
      await this.waitFor(follower.masterLsn, { timeoutMs: remainingMs })
    } catch (error) {
      if (isTandemClientError(error, 'MIN_LSN_TIMEOUT')) {
        throw new TandemClientError('NOT_READY', `${this.path} is still copying the master (LSN ${this.position.lsn} of ${follower.masterLsn}) after ${timeoutMs} ms; raise openTimeoutMs`, { cause: error })
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

/** The client's code for a call on a closed handle: repeating it cannot help (SHUTTING_DOWN would say it can). */
function closedError(): TandemClientError {
  return new TandemClientError('CLOSED', 'the embedded replica is closed')
}

function basicAuthorization(auth: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`
}
