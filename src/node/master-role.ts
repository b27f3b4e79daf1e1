/**
 * The master's parts: the writer and its pipeline, the replication server, and log retention.
 */
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import type { Clock } from '../shared/clock.ts'
import type { Logger } from '../shared/logger.ts'
import { WritePipeline, type LoadRequest, type WriteOutcome, type WriteRequest } from '../master/write-pipeline.ts'
import { CommitTimes } from '../master/commit-times.ts'
import type { SyncOutcome, WriteOptions } from '../master/write-options.ts'
import { expireIdempotencyKeys } from '../master/idempotency.ts'
import { TandemError } from '../shared/errors.ts'
import { ReplicationServer } from '../master/replication-server.ts'
import { LogStore, type Vote, type VoteCandidate } from '../replication-log/log-store.ts'
import { RangeChecks, ensureChecksSchema } from '../replication-log/range-checks.ts'
import { Retention } from '../replication-log/retention.ts'
import type { LogEntry } from '../replication-log/log-entry.ts'
import { diskTakesWrites, foreignObjects, openConnection, openWriter, type Connection, type GuardedConnection, type SchemaGeneration } from '../storage/index.ts'
import type { JobsApi, NodeInfo } from '../http-api/node-api.ts'
import type { NodeConfig } from './config.ts'
import { JobReads, JobWrites, ScheduleReads, ScheduleWrites, Scheduler, Schedules, ensureJobSchema, readJob, summaryOf, type JobSpec } from '../jobs/index.ts'

/** How often a master whose writes fail checks whether its disk takes writes again. */
const writeProbeMs = 1000

export class MasterRole {
  readonly pipeline: WritePipeline
  readonly replication: ReplicationServer
  /** Takes jobs and leases their tasks to replicas. */
  readonly scheduler: Scheduler
  readonly schedules: Schedules
  private readonly jobReads: JobReads
  /** The job queue as the HTTP API uses it. */
  readonly jobs: JobsApi
  private readonly writer: GuardedConnection
  private readonly log: LogStore
  private readonly logReaderConnection: Connection
  private readonly retention = new Retention()
  private readonly retentionTimer: NodeJS.Timeout
  private readonly expiryTimer: NodeJS.Timeout
  private readonly checkTimer: NodeJS.Timeout | undefined
  private readonly probeTimer: NodeJS.Timeout
  private readonly commitTimes = new CommitTimes()
  private readonly commitListeners: ((entry: LogEntry) => void)[] = []
  private readonly config: NodeConfig
  private readonly logger: Logger
  /** Set once a higher epoch is known: this master was deposed and takes no more writes. */
  private deposedBy: number | undefined
  private readonly deposedListeners: ((epoch: number) => void)[] = []
  /**
   * With a coordinator: why this master may not acknowledge now (it does not hold its lease in
   * etcd), checked before a write runs and again before it is acknowledged.
   */
  leaseProblem: () => string | undefined = () => undefined
  /** With a coordinator: records the LSN of a write confirmed by replicas before it is acknowledged (Coordinator.publishSync). */
  beforeSyncAck: (lsn: number) => Promise<void> = () => Promise.resolve()

  /**
   * `schema`: the node's schema generation, moved around every commit that changes the schema.
   * `promoteToEpoch`: this node was a replica and is promoted; its epoch becomes this one, and
   * the first entry it writes records where the epoch began.
   */
  constructor(config: NodeConfig, dbPath: string, nodeId: string, clock: Clock, logger: Logger, schema: SchemaGeneration, clusterId: string, promoteToEpoch?: number) {
    this.config = config
    this.logger = logger
    // Tandem's own statements on the writer (schemas, retention, votes) run under --query-timeout;
    // client statements in a batch under the write budget (write-batch.ts).
    this.writer = openWriter(dbPath, config.synchronous, config.queryTimeoutMs)
    const internally = <T>(fn: () => T) => this.writer.policy.internally(fn)
    // A database Tandem did not create has no log: its replicas would never get its rows.
    const foreign = internally(() => foreignObjects(this.writer.connection))
    if (foreign.length > 0) {
      this.writer.connection.close()
      throw new TandemError(
        'BAD_REQUEST',
        `${dbPath} holds tables Tandem did not create (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}) and no replication log: its replicas would never get those rows. Move the file away and start with --import FILE (or POST it to /db/load), so that every replica copies it`,
        { tables: foreign },
      )
    }
    LogStore.ensureSchema(this.writer.connection, internally)
    internally(() => ensureJobSchema(this.writer.connection))
    ensureChecksSchema(this.writer.connection, internally)
    this.log = new LogStore(this.writer.connection, internally)
    // Durable before any entry of the new epoch exists (an autocommit write, synchronous=FULL).
    if (promoteToEpoch !== undefined) this.log.raiseEpoch(promoteToEpoch)
    for (const { lsn, size } of this.log.sizes()) this.retention.add(lsn, size)
    this.logReaderConnection = openConnection(dbPath, { readOnly: true })
    const logReader = new LogStore(this.logReaderConnection)
    this.replication = new ReplicationServer({
      nodeId,
      clusterId: () => clusterId,
      log: logReader,
      lastLsn: () => this.pipeline.lastLsn,
      epoch: () => this.log.epoch(),
      clock,
      logger,
      heartbeatMs: config.heartbeatMs,
      lingerMs: config.streamLingerMs,
      silenceMsMax: config.silenceMsMax,
      helloTimeoutMs: config.headersTimeoutMs,
      batchEntriesMax: 2000,
      batchBytesMax: 4 * 1024 * 1024,
      bufferedBytesMax: 8 * 1024 * 1024,
      fencing: config.fencing,
      onHigherEpoch: (epoch, source) => this.depose(epoch, source),
      jobs: {
        receive: (nodeId, message) => this.scheduler.receive(nodeId, message),
        acked: (nodeId) => this.scheduler.renew(nodeId),
        disconnected: (nodeId) => this.scheduler.disconnected(nodeId),
      },
    })
    // The master's own log, checked at start as a replica checks its own: a corrupt entry or a
    // broken history chain is reported (/status master.last_problem), and never sent (a replica
    // that needs it gets a snapshot instead).
    const verify = () => this.log.verify()
    const logProblem = this.writer.watched === undefined ? verify() : this.writer.watched.exempt(verify)
    if (logProblem !== undefined) {
      this.replication.logProblem = logProblem
      logger.error({ problem: logProblem }, "the master's log fails its check: replicas that need the damaged entries get snapshots")
    }
    this.pipeline = new WritePipeline({
      writer: this.writer,
      log: this.log,
      schema,
      clock,
      logger,
      queueMax: config.writeQueueMax,
      batchMax: config.writeBatchMax,
      ...(config.writeBudgetMs > 0 ? { longWrites: { dbPath, synchronous: config.synchronous, queryTimeoutMs: config.queryTimeoutMs, budgetMs: config.writeBudgetMs } } : {}),
      onCommit: (entry) => {
        this.commitTimes.add(entry.lsn, entry.time)
        this.retention.add(entry.lsn, entry.ops.length + 32)
        this.replication.publish(entry)
        for (const listener of this.commitListeners) listener(entry)
      },
    })
    const jobWrites = new JobWrites(this.writer.connection)
    this.jobReads = new JobReads(this.logReaderConnection)
    this.scheduler = new Scheduler({
      write: async (fn) => {
        let value: ReturnType<typeof fn> | undefined
        const outcome = await this.pipeline.submit({ internal: () => (value = fn(jobWrites, this.pipeline.lastLsn + 1)) })
        return { value: value as ReturnType<typeof fn>, lsn: outcome.lsn }
      },
      reads: this.jobReads,
      epoch: () => this.log.epoch(),
      send: (nodeId, message) => this.replication.send(nodeId, message),
      appliedLsn: (nodeId) => this.replication.ackedLsnOf(nodeId),
      clock,
      logger,
      leaseMs: config.leaseMs,
      lostLeasesMax: config.lostLeasesMax,
      backupAfterMs: config.backupAfterMs,
      retainMs: config.jobRetainMs,
      retainCount: config.jobRetainCount,
      queuedTasksMax: config.queuedTasksMax,
    })
    const scheduleWrites = new ScheduleWrites(this.writer.connection)
    this.schedules = new Schedules({
      write: async (fn) => {
        let value: ReturnType<typeof fn> | undefined
        const outcome = await this.pipeline.submit({ internal: () => (value = fn(jobWrites, scheduleWrites, this.pipeline.lastLsn + 1)) })
        return { value: value as ReturnType<typeof fn>, lsn: outcome.lsn }
      },
      reads: new ScheduleReads(this.logReaderConnection),
      clock,
      logger,
      hasRoom: (tasks) => this.scheduler.hasRoom(tasks),
      adopt: (jobs) => this.scheduler.adopt(jobs),
    })
    const { scheduler, jobReads, schedules } = this
    this.jobs = {
      submit: (spec) => this.submitJob(spec),
      get: (id) => {
        const view = readJob(jobReads, id, scheduler.progressOf(id))
        // An unfinished job whose handler no connected replica has says so, as its submission did.
        const warning = view === undefined || view.finished_at !== null ? undefined : scheduler.handlerWarning(view.name)
        return view === undefined || warning === undefined ? view : { ...view, warning }
      },
      list: (filter) => jobReads.list(filter).map(summaryOf),
      cancel: (id) => scheduler.cancel(id),
      retry: (id) => scheduler.retry(id),
      waitFinished: (id, timeoutMs) => scheduler.waitFinished(id, timeoutMs),
      subscribe: (id, listener) => scheduler.subscribe(id, listener),
      limits: {
        set: (limit) => this.refusingWhenDeposed(() => scheduler.setLimit(limit)),
        remove: (scope) => this.refusingWhenDeposed(() => scheduler.removeLimit(scope)),
        list: () => scheduler.limitsList(),
      },
      schedules: {
        upsert: (spec) => this.refusingWhenDeposed(() => schedules.upsert(spec)),
        remove: (id) => this.refusingWhenDeposed(() => schedules.remove(id)),
        get: (id) => schedules.get(id),
        list: () => schedules.list(),
      },
    }
    this.recordEpochStart()
    this.scheduler.start()
    this.schedules.start()
    this.retentionTimer = setInterval(() => this.truncateLog(), 1000)
    this.retentionTimer.unref()
    this.expiryTimer = setInterval(() => this.expireIdempotencyKeys(), Math.min(60_000, config.idempotencyWindowMs))
    this.expiryTimer.unref()
    if (config.checkIntervalMs > 0) {
      const checks = new RangeChecks(config.checkRowsMax)
      this.checkTimer = setInterval(() => {
        // Skipped while writes fail or a long write runs: a check is worth no wait.
        if (this.pipeline.failure !== undefined || this.pipeline.isWritingLong) return
        this.pipeline.submit({ internal: (connection) => checks.record(connection), alone: true }).catch(() => {
          // A refused check (a deposed master, a full disk) is simply not made.
        })
      }, config.checkIntervalMs)
      this.checkTimer.unref()
    }
    // While writes fail, a master out of a load balancer's rotation (not ready) would never get
    // the write that shows they succeed again: probe the data directory's disk instead.
    this.probeTimer = setInterval(() => {
      if (this.pipeline.failure !== undefined && diskTakesWrites(config.dataDir)) {
        this.logger.warn({ failure: this.pipeline.failure }, 'the data directory takes writes again: ready for writes')
        this.pipeline.clearFailure()
      }
    }, writeProbeMs)
    this.probeTimer.unref()
  }

  /** Why writes fail now, or undefined (see WritePipeline.failure). */
  get writeFailure(): string | undefined {
    return this.pipeline.failure
  }

  /**
   * The epoch history must say where this master's epoch began. After a promotion (or a crash
   * right after one) the row is missing: write it, as this epoch's first entry.
   */
  private recordEpochStart(): void {
    const epoch = this.log.epoch()
    const recorded = this.log.epochs().some((e) => e.epoch === epoch)
    if (recorded) return
    const startLsn = this.pipeline.lastLsn + 1
    this.pipeline
      .submit({ internal: (connection) => connection.prepare('INSERT OR IGNORE INTO _tandem_epochs(epoch, start_lsn) VALUES (?, ?)').run(epoch, startLsn) })
      .then(() => this.logger.info({ epoch, startLsn }, 'epoch begins'))
      .catch((error: unknown) => this.logger.error({ err: error, epoch }, 'could not record the start of the epoch'))
  }

  /** A higher epoch exists: stop taking writes at once (fencing). */
  /**
   * A promotion asks this master to accept `candidate` for `epoch` (LogStore.grantVote); once it
   * does, it is deposed. Its own epoch stays what it serves: replicas must not take it for the new one.
   */
  grantVote(epoch: number, candidate: VoteCandidate): { granted: boolean; vote: Vote | undefined } {
    const answer = this.log.grantVote(epoch, candidate, false)
    if (answer.granted && this.config.fencing) this.depose(epoch, `a promotion of ${candidate.id} at ${candidate.url}`)
    return answer
  }

  depose(epoch: number, source: string): void {
    if (this.deposedBy !== undefined && this.deposedBy >= epoch) return
    this.deposedBy = epoch
    this.logger.warn({ epoch, ownEpoch: this.log.epoch(), source }, 'a higher epoch exists: this master is deposed and refuses writes')
    this.pipeline.close(new TandemError('NOT_MASTER', `this master (epoch ${this.log.epoch()}) was deposed: epoch ${epoch} exists`, { epoch }))
    for (const listener of this.deposedListeners) listener(epoch)
  }

  get deposedEpoch(): number | undefined {
    return this.deposedBy
  }

  onDeposed(listener: (epoch: number) => void): void {
    this.deposedListeners.push(listener)
  }

  onCommit(listener: (entry: LogEntry) => void): void {
    this.commitListeners.push(listener)
  }

  /**
   * A write, with the cluster's write guarantees around the pipeline: refused before it runs
   * while too few replicas are close enough (min-replicas), and acknowledged only once `sync`
   * replicas hold it, or reported as not confirmed when they do not in time.
   */
  async write(request: WriteRequest | LoadRequest, options: WriteOptions = {}): Promise<WriteOutcome & { sync?: SyncOutcome }> {
    if (this.config.fencing && options.senderEpoch !== undefined && options.senderEpoch > this.log.epoch()) {
      this.depose(options.senderEpoch, 'a forwarded write')
    }
    if (this.deposedBy !== undefined) {
      throw new TandemError('NOT_MASTER', `this master (epoch ${this.log.epoch()}) was deposed: epoch ${this.deposedBy} exists`, { epoch: this.deposedBy })
    }
    const { minReplicas, maxLagMs } = this.config
    if (minReplicas > 0) {
      const within = this.replication.replicasWithin(maxLagMs, this.pipeline.lastLsn, (lsn) => this.commitTimes.of(lsn))
      if (within < minReplicas) {
        throw new TandemError('NOT_ENOUGH_REPLICAS', `only ${within} of the ${minReplicas} replicas required are within ${maxLagMs} ms of the master; nothing was applied`, { within, minReplicas, maxLagMs })
      }
    }
    this.refuseWithoutLease()
    const outcome = await this.pipeline.submit(request)
    this.confirmLease(outcome.lsn)
    const required = options.sync ?? this.config.syncReplicas
    if (required <= 0) return outcome
    const confirmed = await this.replication.waitForConfirmations(outcome.lsn, required, options.syncTimeoutMs ?? this.config.syncTimeoutMs)
    this.lastSync = { lsn: outcome.lsn, required, confirmed }
    if (confirmed >= required) await this.beforeSyncAck(outcome.lsn)
    this.confirmLease(outcome.lsn)
    return { ...outcome, sync: { required, confirmed } }
  }

  /** Before a write or job runs: a master without its lease takes none (nothing is applied). */
  private refuseWithoutLease(): void {
    const problem = this.leaseProblem()
    if (problem !== undefined) throw new TandemError('NO_MASTER', `${problem}: it takes no writes until it holds the master key (nothing was applied)`)
  }

  /**
   * After a commit, before its acknowledgement: a master whose lease may have ended must not
   * acknowledge, since another node may already be master without this entry.
   */
  private confirmLease(lsn: number): void {
    const problem = this.leaseProblem()
    if (problem !== undefined) throw new TandemError('LEASE_LOST', `${problem} after committing LSN ${lsn} and before acknowledging it: the write may or may not survive the failover (retry only with the same Idempotency-Key)`, { lsn })
  }

  /** A change to the queue's schedules: refused, as a write is, while this master is deposed or without its lease. */
  private refusingWhenDeposed<T>(change: () => Promise<T>): Promise<T> {
    if (this.deposedBy !== undefined) {
      return Promise.reject(new TandemError('NOT_MASTER', `this master (epoch ${this.log.epoch()}) was deposed: epoch ${this.deposedBy} exists`, { epoch: this.deposedBy }))
    }
    try {
      this.refuseWithoutLease()
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)))
    }
    return change()
  }

  /**
   * A new job, with the same guarantees as a write: refused while this master is deposed, and
   * confirmed by `sync` replicas (the configured default) before it is acknowledged.
   */
  async submitJob(spec: JobSpec): Promise<Awaited<ReturnType<Scheduler['submit']>> & { sync?: SyncOutcome }> {
    if (this.deposedBy !== undefined) {
      throw new TandemError('NOT_MASTER', `this master (epoch ${this.log.epoch()}) was deposed: epoch ${this.deposedBy} exists`, { epoch: this.deposedBy })
    }
    this.refuseWithoutLease()
    const outcome = await this.scheduler.submit(spec)
    if (!outcome.replayed) this.confirmLease(outcome.lsn)
    const required = this.config.syncReplicas
    if (required <= 0 || outcome.replayed) return outcome
    const confirmed = await this.replication.waitForConfirmations(outcome.lsn, required, this.config.syncTimeoutMs)
    if (confirmed >= required) await this.beforeSyncAck(outcome.lsn)
    return { ...outcome, sync: { required, confirmed } }
  }

  /** For strong and linearizable reads: throws unless this node is still the master. */
  async confirmMastership(timeoutMs: number): Promise<void> {
    if (this.deposedBy !== undefined) throw new TandemError('NOT_MASTER', `this master was deposed: epoch ${this.deposedBy} exists`)
    this.refuseWithoutLease()
    const { highestEpoch } = await this.replication.confirmMastership(timeoutMs)
    const epoch = this.log.epoch()
    if (highestEpoch > epoch) {
      throw new TandemError('NOT_MASTER', `a replica knows epoch ${highestEpoch}, newer than this master's ${epoch}: another node was promoted`, { epoch, highestEpoch })
    }
  }

  /**
   * The write guarantees in force (the stream's linger among them: it is part of the
   * asynchronous loss window), and how the last synchronous write fared, for /status.
   */
  guarantees(): Record<string, unknown> {
    const { syncReplicas, syncTimeoutMs, minReplicas, maxLagMs } = this.config
    return {
      sync_replicas: syncReplicas,
      sync_timeout_ms: syncTimeoutMs,
      min_replicas: minReplicas,
      max_lag_ms: maxLagMs,
      replicas_within_max_lag: this.replication.replicasWithin(maxLagMs, this.pipeline.lastLsn, (lsn) => this.commitTimes.of(lsn)),
      last_sync_write: this.lastSync ?? null,
      stream: { linger_ms: this.config.streamLingerMs, frames: this.replication.streamed.frames, entries: this.replication.streamed.entries },
    }
  }

  private lastSync: { lsn: number; required: number; confirmed: number } | undefined

  private expireIdempotencyKeys(): void {
    const before = Date.now() - this.config.idempotencyWindowMs
    this.pipeline.submit({ internal: (connection) => expireIdempotencyKeys(connection, before) }).catch(() => {
      // Retried at the next sweep; a failed sweep only keeps keys longer.
    })
  }

  accept(socket: WebSocket, request: IncomingMessage, caller: { isNode: boolean }): void {
    this.replication.accept(socket, request, caller)
  }

  /** The first LSN of this master's epoch, once it is recorded (the epoch's first entry). */
  epochStartLsn(): number | undefined {
    const epoch = this.log.epoch()
    return this.log.epochs().find((e) => e.epoch === epoch)?.startLsn
  }

  epoch(): number {
    return this.log.epoch()
  }

  /** Drops log entries no longer needed, between write batches. */
  truncateLog(): void {
    const point = this.retention.truncationPoint(
      { retainBytes: this.config.logRetainBytes, retainBytesMax: this.config.logRetainBytesMax },
      this.replication.neededFromLsn(),
    )
    if (point === undefined) return
    this.log.truncateBefore(point)
    this.retention.dropBefore(point)
  }

  oldestRetainedLsn(): number | undefined {
    return this.log.oldestLsn()
  }

  get retainedLogBytes(): number {
    return this.retention.bytes
  }

  replicaInfos(now: number): NodeInfo[] {
    const lastLsn = this.pipeline.lastLsn
    return this.replication.replicas().map((r) => {
      const lagEntries = Math.max(0, lastLsn - r.ackedLsn)
      let lagMs = 0
      if (lagEntries > 0) {
        const missingSince = this.commitTimes.of(r.ackedLsn + 1) ?? this.log.get(r.ackedLsn + 1)?.time
        lagMs = missingSince === undefined ? now - r.lastAckAt : Math.max(0, now - missingSince)
      }
      return { id: r.nodeId, url: r.url, role: 'replica' as const, reachable: true, appliedLsn: r.ackedLsn, lagEntries, lagMs, ...(r.release === undefined ? {} : { version: r.release }) }
    })
  }

  /** Sends the entries the stream holds (see ReplicationServer.publish) now: the node is stopping. */
  sendHeldEntries(): void {
    this.replication.sendHeld()
  }

  async close(): Promise<void> {
    clearInterval(this.retentionTimer)
    clearInterval(this.expiryTimer)
    clearInterval(this.checkTimer)
    clearInterval(this.probeTimer)
    this.schedules.close()
    this.scheduler.close()
    await this.pipeline.stop()
    this.replication.close()
    this.logReaderConnection.close()
    this.writer.connection.close()
  }
}
