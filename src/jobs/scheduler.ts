/**
 * The master's scheduler: it takes jobs, leases their tasks to replicas with a free slot, and
 * records each task's outcome exactly once.
 *
 * Durable state is the queue's tables (job-schema.ts); every transition (queued, leased, done,
 * failed, dead, cancelled) is an internal write through the write pipeline, so it is
 * group-committed with everything else and replicates. Only in memory (queue-model.ts): the
 * waiting queues, which replica holds which lease and when it last renewed it, backup copies,
 * and progress. A new master (a restart, a promotion) rebuilds it from the tables (`start`).
 *
 * Leases: an assignment carries the master's epoch and a token that only grows per task.
 * Every acknowledgement from a replica renews the leases it holds; a lease not renewed for
 * `leaseMs` expires and its task is queued again. A result counts only when it names a live
 * lease; the write that records it checks the lease again in SQL, so a task's result is
 * recorded once even when two copies race.
 *
 * Backup copies (MapReduce's backup tasks): once a job has no waiting task left, a task running
 * much longer than the job's tasks take on average gets a second copy on another replica with a
 * free slot. The first result wins; the other copy is cancelled.
 */
import { EventEmitter } from 'node:events'
import type { Clock } from '../shared/clock.ts'
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { LeaseRef, MasterMessage, ReplicaMessage } from '../protocol/messages.ts'
import { retryDelayMs } from './backoff.ts'
import type { JobState } from './job-schema.ts'
import type { JobOptions, JobSpec } from './job-spec.ts'
import type { DedupeHolder, JobReads, JobRow, JobWrites, LeaseEnd, NewJob, TaskRow } from './job-store.ts'
import { keyOf, newJobId, runsBefore, setPhase, type Job, type Lease, type Task } from './queue-model.ts'
import { TaskQueue } from './task-queue.ts'
import { Dependencies } from './dependencies.ts'
import { Limits, limitsMax, type Limit } from './limits.ts'
import { Workers, type Worker } from './workers.ts'

export interface SchedulerOptions {
  /** Runs `fn` inside the write pipeline (an internal write); `nextLsn` is the entry it writes. */
  write: <T>(fn: (writes: JobWrites, nextLsn: number) => T) => Promise<{ value: T; lsn: number }>
  reads: JobReads
  epoch: () => number
  /** Sends to a connected replica; false when it is not connected. */
  send: (nodeId: string, message: MasterMessage) => boolean
  /** The newest LSN a replica acknowledged, if it is connected. */
  appliedLsn: (nodeId: string) => number | undefined
  clock: Clock
  logger: Logger
  leaseMs: number
  /** A task whose replica was lost this many times is dead (it may be what kills them). */
  lostLeasesMax: number
  /** A task gets a backup copy once it has run this long and twice the job's mean task time. */
  backupAfterMs: number
  retainMs: number
  retainCount: number
  /** Unfinished tasks held at once, those of submissions being written included. */
  queuedTasksMax: number
  random?: () => number
}

export type JobEvent =
  | { event: 'task'; data: { job: string; index: number; state: string; attempts: number; worker: string | null; error?: string } }
  | { event: 'progress'; data: { job: string; index: number; value: unknown } }
  | { event: 'job'; data: { job: string; state: JobState } }

type Result = LeaseRef & { ok: boolean; value?: string; error?: string; ms?: number }

export class Scheduler {
  private readonly options: SchedulerOptions
  private readonly jobs = new Map<string, Job>()
  /** Tasks of submissions being written: counted with `tasks` against queuedTasksMax. */
  private reservedTasks = 0
  /** Unfinished tasks, by keyOf(job, index). */
  private readonly tasks = new Map<string, Task>()
  private readonly queue: TaskQueue
  private readonly workers: Workers
  /** Every live lease, primary and backup. */
  private readonly leases = new Set<Lease>()
  /** Jobs waiting for the jobs they run after: their tasks are in `tasks`, not queued. */
  private readonly dependencies = new Dependencies()
  private readonly limits = new Limits()
  /** Set while a rate limit holds tasks back: the next assign is due when it allows one. */
  private limitTimer: NodeJS.Timeout | undefined
  private readonly events = new EventEmitter()
  private readonly random: () => number
  private isAssignScheduled = false
  private readonly leaseTimer: NodeJS.Timeout
  private readonly retentionTimer: NodeJS.Timeout
  private isClosed = false
  readonly counters = { submitted: 0, assigned: 0, recorded: 0, rejected: 0, leasesExpired: 0, backups: 0, backupWins: 0 }

  constructor(options: SchedulerOptions) {
    this.options = options
    this.random = options.random ?? Math.random
    this.queue = new TaskQueue(() => options.clock.now(), () => this.scheduleAssign())
    this.workers = new Workers(options.leaseMs, options.appliedLsn)
    this.events.setMaxListeners(0)
    this.leaseTimer = setInterval(() => this.tick(), Math.max(20, Math.min(250, options.leaseMs / 4)))
    this.leaseTimer.unref()
    this.retentionTimer = setInterval(() => this.expireJobs(), 60_000)
    this.retentionTimer.unref()
  }

  private now(): number {
    return this.options.clock.now()
  }

  /**
   * Carries on with the queue as the tables hold it (a new master after a restart or a
   * promotion). Leases found there belong to a replica that may still be running the task: they
   * stay live for one lease period, the grace its replica has to say it holds them (it says so
   * when it connects), then expire.
   */
  start(): void {
    const now = this.now()
    for (const limit of this.options.reads.limits()) this.limits.set(limit)
    const waiting: string[] = []
    for (const row of this.options.reads.openJobs()) {
      const counts = this.options.reads.counts(row.id)
      const job = jobFromRow(row, counts.queued + counts.leased + counts.failed, counts.dead)
      if (row.state === 'waiting') waiting.push(row.id)
      else job.after = this.options.reads.afterResults(row.id)
      this.jobs.set(row.id, job)
    }
    const isWaiting = new Set(waiting)
    for (const row of this.options.reads.openTasks()) {
      const job = this.jobs.get(row.job_id)
      if (job === undefined) continue
      const task = taskFromRow(job, row)
      this.tasks.set(keyOf(job.id, task.index), task)
      if (isWaiting.has(job.id)) continue
      if (row.state === 'leased' && row.lease_epoch !== null && row.worker !== null) {
        setPhase(task, 'leased')
        task.lease = { task, epoch: row.lease_epoch, token: row.lease_token, worker: row.worker, startedAt: row.started_at ?? now, renewedAt: now, isBackup: false }
        this.leases.add(task.lease)
      } else {
        this.enqueue(task)
      }
    }
    // What the jobs they wait for did meanwhile (the old master may have died between a job's end and its dependents' release).
    for (const id of waiting) {
      const dependencies = this.options.reads.dependencies(id)
      const states = dependencies.map((d) => ({ id: d.after_id, state: this.options.reads.job(d.after_id)?.state ?? 'completed' }))
      this.await(id, states, dependencies[0]?.on_failure === 'continue' ? 'continue' : 'fail')
    }
    if (this.tasks.size > 0) this.options.logger.info({ jobs: this.jobs.size, tasks: this.tasks.size, leased: this.leases.size, waiting: this.dependencies.size }, 'carrying on with the job queue')
    this.scheduleAssign()
  }

  /**
   * Job `id` (its tasks in `tasks`, not queued) runs after jobs in `states`: it fails now if one
   * of them failed under `fail`, runs now if none is unfinished, and waits otherwise.
   */
  private await(id: string, states: { id: string; state: JobState }[], onFailure: 'fail' | 'continue'): void {
    const failed = onFailure === 'fail' ? states.find((s) => s.state === 'failed' || s.state === 'cancelled') : undefined
    if (failed !== undefined) return this.failWaiting(id, `job ${failed.id}, which it runs after, ended ${failed.state}`)
    const blockers = states.filter((s) => !isFinished(s.state)).map((s) => s.id)
    if (blockers.length === 0) return this.releaseWaiting(id)
    this.dependencies.wait(id, blockers, onFailure)
  }

  /** Every job it waited for ended: the job is queued, at a new LSN, with their results. */
  private releaseWaiting(id: string): void {
    this.options
      .write((writes, nextLsn) => (writes.release(id, nextLsn) ? { after: writes.afterResults(id) } : undefined))
      .then(({ value, lsn }) => {
        const job = this.jobs.get(id)
        if (value === undefined || job === undefined) return
        job.lsn = lsn
        job.after = value.after
        for (const task of this.tasks.values()) if (task.job === job && task.phase === 'new') this.enqueue(task)
        this.emit({ event: 'job', data: { job: id, state: 'queued' } })
        this.scheduleAssign()
      })
      .catch((error: unknown) => {
        // The next master finds it waiting with nothing to wait for, and releases it (start).
        if (!this.isClosed) this.options.logger.warn({ err: error, job: id }, `could not release a job whose dependencies ended: ${messageOf(error)}`)
      })
  }

  /** One of the jobs it waited for failed it: the job fails without running. */
  private failWaiting(id: string, error: string): void {
    this.options
      .write((writes) => writes.failWaiting(id, error, this.now()))
      .then(({ value: failed }) => {
        const job = this.jobs.get(id)
        if (!failed || job === undefined) return
        for (const task of [...this.tasks.values()]) {
          if (task.job !== job) continue
          this.emit({ event: 'task', data: { job: id, index: task.index, state: 'dead', attempts: task.attempts, worker: null, error } })
          this.forget(task)
        }
        this.finished(job, 'failed')
      })
      .catch((failure: unknown) => {
        if (!this.isClosed) this.options.logger.warn({ err: failure, job: id }, `could not fail a job whose dependency failed: ${messageOf(failure)}`)
      })
  }

  // ── Jobs ─────────────────────────────────────────────────────────────────

  /**
   * Said with a job whose handler no connected replica has: it is accepted (a replica with it
   * may connect later), but its tasks wait until then, which a client should not have to guess.
   */
  handlerWarning(name: string): string | undefined {
    if (this.workers.serves(name)) return undefined
    return `no connected replica runs a handler named '${name}': the job's tasks wait until one connects (a replica started with --jobs whose module exports ${name})`
  }

  async submit(spec: JobSpec): Promise<Submitted> {
    const now = this.now()
    const id = newJobId(now)
    const runAfter = now + spec.delayMs
    this.reserve(spec.inputs.length)
    /** The waiting task a debounce took out of the queue, while its write is in flight. */
    let debounced: Task | undefined
    let written
    try {
      written = await this.options.write((writes, nextLsn): Outcome => {
        const row = spec.idempotencyKey === undefined ? undefined : writes.jobByKey(spec.idempotencyKey)
        if (row !== undefined) return { kind: 'replayed', row }
        const { dedupe } = spec
        const holder = dedupe === undefined ? undefined : writes.dedupeHolder(dedupe.key)
        if (dedupe?.mode === 'drop' && holder !== undefined && isLive(holder, now)) return { kind: 'deduplicated', holder }
        if (dedupe?.mode === 'debounce' && holder !== undefined && holder.finished_at === null && holder.task_count === 1) {
          // Only a task still waiting here, with no lease write in flight, takes the new input;
          // the write pipeline runs this in its batch, between any two of the scheduler's turns.
          const task = this.tasks.get(keyOf(holder.job_id, 0))
          if (task?.phase === 'waiting' && writes.debounce(holder.job_id, spec.inputs[0]!, runAfter, nextLsn)) {
            this.forget(task)
            debounced = task
            return { kind: 'debounced', task }
          }
        }
        // The jobs it runs after, as they stand in this transaction: each must exist.
        const states = writes.statesOf(spec.after)
        const missing = spec.after.find((after) => !states.has(after))
        if (missing !== undefined) throw new TandemError('BAD_REQUEST', `"after" names job ${missing}, which does not exist (or passed its retention)`)
        const after = spec.after.map((afterId) => ({ id: afterId, state: states.get(afterId)! }))
        const waits = after.some((a) => !isFinished(a.state) || (spec.onFailure === 'fail' && a.state !== 'completed'))
        writes.insertJob({ id, state: waits ? 'waiting' : 'queued', name: spec.name, options: spec.options, inputs: spec.inputs, lsn: nextLsn, idempotencyKey: spec.idempotencyKey, requestHash: spec.hash, createdAt: now, runAfter })
        if (after.length > 0) writes.addDependencies(id, spec.after, spec.onFailure)
        if (dedupe !== undefined) writes.holdDedupe(dedupe.key, id, now, dedupe.windowMs)
        return { kind: 'new', after, waits, results: waits || after.length === 0 ? undefined : writes.afterResults(id) }
      })
    } catch (error) {
      // Not written: the task a debounce took out waits again as it was.
      if (debounced !== undefined && this.jobs.get(debounced.job.id) === debounced.job && !debounced.job.isCancelled) this.enqueue(copyOf(debounced, debounced.input, debounced.runAfter))
      throw error
    } finally {
      this.reservedTasks -= spec.inputs.length
    }
    const { value: outcome, lsn } = written
    if (outcome.kind === 'replayed') {
      const existing = outcome.row
      if (existing.request_hash !== spec.hash) {
        throw new TandemError('IDEMPOTENCY_KEY_REUSED', `idempotency_key ${spec.idempotencyKey} was used for a different job (${existing.id}); use a new key for a new job`)
      }
      return { id: existing.id, state: existing.state, tasks: existing.task_count, lsn: existing.lsn, replayed: true }
    }
    if (outcome.kind === 'deduplicated') {
      const { holder } = outcome
      return { id: holder.job_id, state: holder.state, tasks: holder.task_count, lsn, replayed: false, deduplicated: true }
    }
    if (outcome.kind === 'debounced') {
      const { job } = outcome.task
      job.lsn = lsn
      // Cancelled while the write was in flight: the cancel's own write left the table right.
      if (this.jobs.get(job.id) === job && !job.isCancelled) this.enqueue(copyOf(outcome.task, spec.inputs[0]!, runAfter))
      this.scheduleAssign()
      return { id: job.id, state: 'queued', tasks: 1, lsn, replayed: false, debounced: true }
    }
    const state = outcome.waits ? 'waiting' : 'queued'
    this.adopt([{ id, state, name: spec.name, options: spec.options, inputs: spec.inputs, lsn, idempotencyKey: spec.idempotencyKey, requestHash: spec.hash, createdAt: now, runAfter }], outcome.results)
    if (outcome.waits) this.await(id, outcome.after, spec.onFailure)
    const warning = this.handlerWarning(spec.name)
    return { id, state, tasks: spec.inputs.length, lsn, replayed: false, ...(warning === undefined ? {} : { warning }) }
  }

  /**
   * Jobs just committed (a submission, a schedule's occurrences): their tasks wait in memory from
   * now on, queued, or (a job `waiting` for others) held until it is released. `after`: the
   * results of the jobs they run after (ctx.after).
   */
  adopt(jobs: readonly NewJob[], after?: string): void {
    for (const spec of jobs) {
      const job: Job = { id: spec.id, name: spec.name, options: spec.options, lsn: spec.lsn, after, createdAt: spec.createdAt, open: spec.inputs.length, dead: 0, waiting: 0, doneCount: 0, doneMsTotal: 0, isCancelled: false }
      this.jobs.set(job.id, job)
      spec.inputs.forEach((input, index) => {
        const task = newTask(job, index, input, 0, spec.runAfter)
        if (spec.state === 'waiting') this.tasks.set(keyOf(job.id, index), task)
        else this.enqueue(task)
      })
      this.counters.submitted++
    }
    this.scheduleAssign()
  }

  /** Whether `count` more tasks fit under queuedTasksMax now. */
  hasRoom(count: number): boolean {
    return this.tasks.size + this.reservedTasks + count <= this.options.queuedTasksMax
  }

  /**
   * Every unfinished task sits in memory with its input (and in the tables): past
   * queuedTasksMax a submission is refused before anything is written, instead of the master
   * growing until it is killed.
   */
  private reserve(count: number): void {
    const max = this.options.queuedTasksMax
    if (count > max) {
      throw new TandemError('BAD_REQUEST', `the job has ${count} tasks; the master holds at most ${max} unfinished tasks (--max-queued-tasks): split it`)
    }
    const held = this.tasks.size + this.reservedTasks
    if (held + count > max) {
      throw new TandemError('OVERLOADED', `the master holds ${held} unfinished tasks and takes at most ${max} (--max-queued-tasks): retry when some have finished`, { queuedTasks: held, queuedTasksMax: max })
    }
    this.reservedTasks += count
  }

  async cancel(id: string): Promise<void> {
    const row = this.options.reads.job(id)
    if (row === undefined) throw notFound(id)
    if (row.finished_at !== null) throw new TandemError('JOB_FINISHED', `job ${id} already finished (${row.state}); nothing to cancel`)
    const { value: isCancelled } = await this.options.write((writes) => writes.cancel(id, this.now()))
    if (!isCancelled) throw new TandemError('JOB_FINISHED', `job ${id} already finished; nothing to cancel`)
    const job = this.jobs.get(id)
    if (job !== undefined) {
      job.isCancelled = true
      for (let index = 0; index < row.task_count; index++) {
        const task = this.tasks.get(keyOf(id, index))
        if (task === undefined) continue
        for (const lease of [task.lease, task.backup]) if (lease !== undefined) this.sendCancel(lease)
        this.forget(task)
      }
      this.jobs.delete(id)
    }
    this.emit({ event: 'job', data: { job: id, state: 'cancelled' } })
    this.dependencies.forget(id)
    this.endedForDependents(id, 'cancelled')
    this.scheduleAssign()
  }

  /** Queues a job's dead and cancelled tasks again, with fresh attempts. */
  async retry(id: string): Promise<number> {
    const row = this.options.reads.job(id)
    if (row === undefined) throw notFound(id)
    // At most every task of the job comes back: held against --max-queued-tasks as a submission is.
    this.reserve(row.task_count)
    let written
    try {
      written = await this.options.write((writes) => ({ rows: writes.retry(id, this.now()), state: writes.stateOf(id) ?? 'queued' }))
    } finally {
      this.reservedTasks -= row.task_count
    }
    const {
      value: { rows, state },
    } = written
    if (rows.length === 0) throw new TandemError('JOB_NOT_RETRYABLE', `job ${id} has no dead or cancelled tasks to retry`)
    let job = this.jobs.get(id)
    if (job === undefined) {
      job = jobFromRow(row, 0, 0)
      job.after = this.options.reads.afterResults(id)
      this.jobs.set(id, job)
    }
    job.isCancelled = false
    job.dead = 0
    for (const taskRow of rows) {
      if (this.tasks.has(keyOf(id, taskRow.idx))) continue
      job.open++
      const task = taskFromRow(job, taskRow)
      this.tasks.set(keyOf(id, task.index), task)
      this.enqueue(task)
    }
    this.emit({ event: 'job', data: { job: id, state } })
    this.scheduleAssign()
    return rows.length
  }

  /** Resolves true once the job is finished, false when `timeoutMs` passes first. */
  waitFinished(id: string, timeoutMs: number): Promise<boolean> {
    const row = this.options.reads.job(id)
    if (row === undefined) return Promise.reject(notFound(id))
    if (row.finished_at !== null) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (finished: boolean) => {
        clearTimeout(timer)
        unsubscribe()
        resolve(finished)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      const unsubscribe = this.subscribe(id, (e) => {
        if (e.event === 'job' && isFinished(e.data.state)) done(true)
      })
    })
  }

  subscribe(id: string, listener: (event: JobEvent) => void): () => void {
    this.events.on(id, listener)
    return () => this.events.off(id, listener)
  }

  /** In-memory progress of a job's running tasks, by index. */
  progressOf(id: string): Map<number, unknown> {
    const progress = new Map<number, unknown>()
    for (const lease of this.leases) if (lease.task.job.id === id && lease.task.progress !== null) progress.set(lease.task.index, lease.task.progress)
    return progress
  }

  // ── Replicas ─────────────────────────────────────────────────────────────

  /** A replica's job messages. */
  receive(nodeId: string, message: ReplicaMessage): void {
    if (message.type === 'worker') this.register(nodeId, message.handlers, message.concurrency, message.prefetch, message.running)
    else if (message.type === 'result') this.record(nodeId, message)
    else if (message.type === 'progress') {
      const lease = this.liveLease(message)
      if (lease === undefined) return
      lease.task.progress = message.value
      this.emit({ event: 'progress', data: { job: lease.task.job.id, index: lease.task.index, value: message.value } })
    }
  }

  /** Every acknowledgement renews every lease the replica holds. */
  renew(nodeId: string): void {
    this.workers.renew(nodeId, this.now())
  }

  disconnected(nodeId: string): void {
    this.workers.disconnected(nodeId)
  }

  /**
   * A replica says what it can run and which leases it still holds (after a reconnect, or to a
   * new master). Its leases it does not name are lost (it restarted): they expire now. Ones it
   * names that are not live any more are cancelled there.
   */
  private register(nodeId: string, handlers: string[], concurrency: number, prefetch: number | undefined, running: LeaseRef[]): void {
    const now = this.now()
    const worker = this.workers.register(nodeId, handlers, concurrency, prefetch, now)
    const held = new Set(running.map((r) => leaseId(r)))
    const lost: Lease[] = []
    for (const lease of this.leases) {
      if (lease.worker !== nodeId) continue
      if (held.has(leaseId({ job: lease.task.job.id, index: lease.task.index, epoch: lease.epoch, token: lease.token }))) {
        lease.renewedAt = now
        worker.running.add(lease)
      } else if (lease.isBackup) {
        this.dropBackup(lease.task)
      } else if (lease.task.phase === 'leased') {
        lost.push(lease)
      }
    }
    for (const ref of running) if (this.liveLease(ref)?.worker !== nodeId) this.options.send(nodeId, { type: 'cancel', ...refOf(ref) })
    this.options.logger.info({ replica: nodeId, handlers, concurrency, prefetch: worker.prefetch, holds: running.length, lost: lost.length }, 'replica runs jobs')
    if (lost.length > 0) this.loseLeases(lost, `replica ${nodeId} restarted and no longer runs it`)
    this.scheduleAssign()
  }

  private liveLease(ref: LeaseRef): Lease | undefined {
    const task = this.tasks.get(keyOf(ref.job, ref.index))
    if (task?.phase !== 'leased') return undefined
    for (const lease of [task.lease, task.backup]) if (lease !== undefined && lease.epoch === ref.epoch && lease.token === ref.token) return lease
    return undefined
  }

  /** A task ended on a replica: record it if its lease is live; otherwise reject it. */
  private record(nodeId: string, message: Result): void {
    const lease = this.liveLease(message)
    if (lease === undefined) return this.reject(nodeId, message, 'the lease is not live (it expired, the task was cancelled, or it was recorded already)')
    const { task } = lease
    if (lease.isBackup && !message.ok) {
      this.dropBackup(task)
      this.options.send(nodeId, { type: 'recorded', ...refOf(message), accepted: false, reason: 'a backup copy failed; the task goes on under its lease' })
      return
    }
    const primary = task.lease!
    const copies = [primary, ...(task.backup === undefined ? [] : [task.backup])]
    for (const copy of copies) this.release(copy)
    // The run time counts now, before the slot it freed is filled: it sizes the prefetch of that
    // very refill. The replica's measure (not the time queued there); the lease's age from an older replica.
    if (message.ok) {
      const now = this.now()
      task.job.doneCount++
      task.job.doneMsTotal += typeof message.ms === 'number' && message.ms >= 0 ? Math.min(message.ms, now - lease.startedAt) : now - lease.startedAt
    }
    this.scheduleAssign()
    setPhase(task, 'ending')
    const { job } = task
    const now = this.now()
    const attempts = task.attempts + 1
    let end: LeaseEnd
    if (message.ok) end = { state: 'done', result: message.value ?? 'null', worker: nodeId }
    else {
      const error = message.error ?? 'the handler failed'
      end = attempts >= job.options.attempts ? { state: 'dead', error, runAfter: now } : { state: 'failed', error, runAfter: now + retryDelayMs(job.options.backoff, attempts, this.random) }
    }
    const isTerminal = end.state !== 'failed'
    if (isTerminal) job.open--
    if (end.state === 'dead') job.dead++
    const finishes = isTerminal && job.open === 0 && !job.isCancelled
    const jobState: JobState = job.dead > 0 ? 'failed' : 'completed'
    this.options
      .write((writes) => {
        if (!writes.endLease(job.id, task.index, primary, end, now)) throw new StaleLease()
        return finishes && writes.finishJob(job.id, jobState, now)
      })
      .then(({ value: hasFinished }) => {
        this.counters.recorded++
        if (lease.isBackup) this.counters.backupWins++
        task.attempts = attempts
        task.lease = task.backup = undefined
        this.options.send(nodeId, { type: 'recorded', ...refOf(message), accepted: true })
        for (const copy of copies) if (copy !== lease) this.sendCancel(copy)
        const error = 'error' in end ? { error: end.error } : {}
        this.emit({ event: 'task', data: { job: job.id, index: task.index, state: end.state, attempts, worker: nodeId, ...error } })
        if (end.state === 'failed') {
          task.runAfter = end.runAfter
          this.enqueue(task)
        } else {
          this.forget(task)
        }
        if (hasFinished) this.finished(job, jobState)
        this.scheduleAssign()
      })
      .catch((error: unknown) => {
        if (isTerminal) job.open++
        if (end.state === 'dead') job.dead--
        if (error instanceof StaleLease) {
          this.forget(task)
          this.reject(nodeId, message, 'the lease is not live')
          return
        }
        // Not recorded (the master is deposed, the disk failed): the replica sends it again
        // after it reconnects, to whichever master then holds the queue.
        setPhase(task, 'leased')
        for (const copy of copies) this.hold(copy)
        this.options.logger.warn({ err: error, job: job.id, index: task.index }, 'could not record a task result')
      })
  }

  private reject(nodeId: string, ref: LeaseRef, reason: string): void {
    this.counters.rejected++
    this.options.logger.info({ replica: nodeId, job: ref.job, index: ref.index, epoch: ref.epoch, token: ref.token }, `rejected a result: ${reason}`)
    this.options.send(nodeId, { type: 'recorded', ...refOf(ref), accepted: false, reason })
  }

  // ── Assignment ───────────────────────────────────────────────────────────

  /**
   * Assigns once the current event is handled (a microtask, not a later turn): a slot freed by
   * a result is leased again before the write pipeline's next batch, so the result and the next
   * lease commit together — one commit per slot turnover instead of two.
   */
  private scheduleAssign(): void {
    if (this.isAssignScheduled || this.isClosed) return
    this.isAssignScheduled = true
    queueMicrotask(() => {
      this.isAssignScheduled = false
      this.assign()
    })
  }

  /**
   * Pairs waiting tasks with free slots, highest priority first (see Workers.choose for which
   * replica). One write leases the whole batch; the assignments are sent once it commits.
   */
  private assign(): void {
    const now = this.now()
    const epoch = this.options.epoch()
    const picks: Lease[] = []
    // Counted only when a limit or a tie between two groups needs it: off the common path.
    let counted: Map<string, number> | undefined
    const running = () => (counted ??= this.runningByScope())
    let wakeAt = Infinity
    for (;;) {
      let best: { task: Task; worker: Worker } | undefined
      for (const task of this.queue.heads()) {
        if (best !== undefined && !runsFirst(task, best.task, running)) continue
        if (!this.limits.isEmpty) {
          const allowed = this.limits.allows(task, running(), now)
          if (allowed !== true) {
            wakeAt = Math.min(wakeAt, allowed)
            continue
          }
        }
        const worker = this.workers.choose(task.job.name, task.job.lsn, now, undefined, meanRunMs(task.job))
        if (worker !== undefined) best = { task, worker }
      }
      if (best === undefined) break
      const { task, worker } = best
      this.limits.started(task, now)
      if (counted !== undefined) this.countRunning(counted, task)
      this.queue.take(task)
      setPhase(task, 'leasing')
      const lease: Lease = { task, epoch, token: task.token + 1, worker: worker.nodeId, startedAt: now, renewedAt: now, isBackup: false }
      task.token = lease.token
      worker.running.add(lease)
      picks.push(lease)
    }
    if (wakeAt < Infinity && this.limitTimer === undefined) {
      this.limitTimer = setTimeout(() => {
        this.limitTimer = undefined
        this.scheduleAssign()
      }, Math.max(1, wakeAt - now))
      this.limitTimer.unref()
    }
    if (picks.length === 0) {
      this.assignBackups()
      return
    }
    this.options
      .write((writes) => picks.map((l) => writes.lease(l.task.job.id, l.task.index, l.epoch, l.token, l.worker, now)))
      .then(({ value: isLeased }) => {
        picks.forEach((lease, i) => {
          const { task } = lease
          this.workers.get(lease.worker)?.running.delete(lease)
          if (!isLeased[i]) {
            this.options.logger.error({ job: task.job.id, index: task.index }, 'a task held as waiting was not waiting in the table; dropping it from memory')
            this.forget(task)
          } else if (task.phase !== 'leasing') {
            this.sendCancel(lease) // cancelled while the lease was being written
          } else {
            setPhase(task, 'leased')
            task.lease = lease
            task.progress = null
            this.hold(lease)
            this.counters.assigned++
            this.sendAssignment(lease)
          }
        })
        this.scheduleAssign()
      })
      .catch((error: unknown) => {
        for (const lease of picks) {
          this.workers.get(lease.worker)?.running.delete(lease)
          if (lease.task.phase === 'leasing') this.enqueue(lease.task)
        }
        if (!this.isClosed) this.options.logger.warn({ err: error, tasks: picks.length }, `could not lease tasks: ${messageOf(error)}`)
      })
  }

  /**
   * Near the end of a job (nothing of it waits any more), a task running longer than
   * `backupAfterMs` and twice the job's mean task time gets a copy on another replica.
   */
  private assignBackups(): void {
    const now = this.now()
    if (!this.workers.hasIdleSlot(now)) return
    // A copy runs as a task does: within its limits.
    const running = this.limits.isEmpty ? undefined : this.runningByScope()
    for (const lease of [...this.leases]) {
      const { task } = lease
      const { job } = task
      if (lease.isBackup || task.phase !== 'leased' || task.backup !== undefined || job.waiting > 0 || job.doneCount === 0) continue
      if (running !== undefined && this.limits.allows(task, running, now) !== true) continue
      if (now - lease.startedAt < Math.max(this.options.backupAfterMs, (2 * job.doneMsTotal) / job.doneCount)) continue
      const worker = this.workers.choose(job.name, job.lsn, now, lease.worker)
      if (worker === undefined) continue
      // The copy's token is only in memory; the next durable lease takes a higher one.
      task.token++
      task.backup = { task, epoch: lease.epoch, token: task.token, worker: worker.nodeId, startedAt: now, renewedAt: now, isBackup: true }
      this.hold(task.backup)
      if (running !== undefined) {
        this.limits.started(task, now)
        this.countRunning(running, task)
      }
      this.counters.backups++
      this.options.logger.info({ job: job.id, index: task.index, primary: lease.worker, backup: worker.nodeId }, 'running a backup copy of a straggling task')
      this.sendAssignment(task.backup)
    }
  }

  private sendAssignment(lease: Lease): void {
    const { task } = lease
    const sent = this.options.send(lease.worker, {
      type: 'assign',
      job: task.job.id,
      index: task.index,
      epoch: lease.epoch,
      token: lease.token,
      name: task.job.name,
      input: task.input,
      lsn: task.job.lsn,
      timeoutMs: task.job.options.timeoutMs,
      attempt: task.attempts + 1,
      ...(task.job.after === undefined ? {} : { after: task.job.after }),
    })
    if (!sent && lease.isBackup) this.dropBackup(task)
    else if (!sent) this.loseLeases([lease], `replica ${lease.worker} disconnected before the assignment was sent`)
    else this.emit({ event: 'task', data: { job: task.job.id, index: task.index, state: 'running', attempts: task.attempts, worker: lease.worker } })
  }

  // ── Leases ───────────────────────────────────────────────────────────────

  /** Expires leases not renewed within leaseMs; starts backup copies that became due. */
  private tick(): void {
    const now = this.now()
    const expired: Lease[] = []
    for (const lease of this.leases) {
      if (now - lease.renewedAt <= this.options.leaseMs || lease.task.phase !== 'leased') continue
      if (lease.isBackup) this.dropBackup(lease.task)
      else expired.push(lease)
    }
    if (expired.length > 0) this.loseLeases(expired, `its replica did not renew the lease within ${this.options.leaseMs} ms`)
    this.assignBackups()
  }

  /**
   * The leases' replicas lost them: queue their tasks again (or dead, past lostLeasesMax). No
   * cancel is sent: such a replica is unreachable or paused; if it comes back and reports, its
   * result is rejected (and it learns so).
   */
  private loseLeases(leases: Lease[], reason: string): void {
    const now = this.now()
    const error = `lease lost: ${reason}`
    const ends = leases.map((lease) => {
      const { task } = lease
      this.release(lease)
      if (task.backup !== undefined) {
        this.sendCancel(task.backup)
        this.dropBackup(task)
      }
      setPhase(task, 'ending')
      const isDead = task.lostLeases + 1 >= this.options.lostLeasesMax
      if (isDead) {
        task.job.open--
        task.job.dead++
      }
      return { lease, isDead, finishes: isDead && task.job.open === 0 && !task.job.isCancelled }
    })
    this.counters.leasesExpired += leases.length
    this.options
      .write((writes) =>
        ends.map(({ lease, isDead, finishes }) => {
          const isEnded = writes.endLease(lease.task.job.id, lease.task.index, lease, { state: isDead ? 'dead' : 'queued', lostLease: true, error }, now)
          return { isEnded, hasFinished: isEnded && finishes && writes.finishJob(lease.task.job.id, 'failed', now) }
        }),
      )
      .then(({ value: outcomes }) => {
        ends.forEach(({ lease, isDead }, i) => {
          const { task } = lease
          const { isEnded, hasFinished } = outcomes[i]!
          task.lease = undefined
          if (!isEnded) return this.forget(task)
          task.lostLeases++
          this.options.logger.warn({ job: task.job.id, index: task.index, replica: lease.worker, isDead }, error)
          this.emit({ event: 'task', data: { job: task.job.id, index: task.index, state: isDead ? 'dead' : 'queued', attempts: task.attempts, worker: null, error } })
          if (isDead) this.forget(task)
          else this.enqueue(task)
          if (hasFinished) this.finished(task.job, 'failed')
        })
        this.scheduleAssign()
      })
      .catch((failure: unknown) => {
        for (const { lease, isDead } of ends) {
          if (isDead) {
            lease.task.job.open++
            lease.task.job.dead--
          }
          setPhase(lease.task, 'leased')
          this.hold(lease)
        }
        if (!this.isClosed) this.options.logger.warn({ err: failure }, 'could not expire leases; retrying')
      })
  }

  private dropBackup(task: Task): void {
    if (task.backup === undefined) return
    this.release(task.backup)
    task.backup = undefined
  }

  private sendCancel(lease: Lease): void {
    this.options.send(lease.worker, { type: 'cancel', job: lease.task.job.id, index: lease.task.index, epoch: lease.epoch, token: lease.token })
  }

  /** The lease is live and takes a slot on its replica. */
  private hold(lease: Lease): void {
    this.leases.add(lease)
    this.workers.get(lease.worker)?.running.add(lease)
  }

  /** The lease is over: its slot is free. */
  private release(lease: Lease): void {
    this.leases.delete(lease)
    this.workers.get(lease.worker)?.running.delete(lease)
  }

  // ── Queue ────────────────────────────────────────────────────────────────

  private enqueue(task: Task): void {
    setPhase(task, 'waiting')
    this.tasks.set(keyOf(task.job.id, task.index), task)
    this.queue.add(task)
  }

  private forget(task: Task): void {
    for (const lease of [task.lease, task.backup]) if (lease !== undefined) this.release(lease)
    task.lease = task.backup = undefined
    setPhase(task, 'gone')
    this.tasks.delete(keyOf(task.job.id, task.index))
  }

  private finished(job: Job, state: JobState): void {
    this.jobs.delete(job.id)
    this.emit({ event: 'job', data: { job: job.id, state } })
    this.endedForDependents(job.id, state)
  }

  /** Releases or fails the jobs that waited for `id`. */
  private endedForDependents(id: string, state: JobState): void {
    if (state !== 'completed' && state !== 'failed' && state !== 'cancelled') return
    const { release, fail } = this.dependencies.ended(id, state)
    for (const dependent of release) this.releaseWaiting(dependent)
    for (const { id: dependent, error } of fail) this.failWaiting(dependent, error)
  }

  private emit(event: JobEvent): void {
    this.events.emit(event.data.job, event)
  }

  private expireJobs(): void {
    const now = this.now()
    this.options
      .write((writes) => writes.expire(now - this.options.retainMs, this.options.retainCount, 1000))
      .then(({ value: deleted }) => {
        if (deleted > 0) this.options.logger.info({ deleted }, 'deleted finished jobs past their retention')
      })
      .catch(() => {
        // Retried at the next sweep; a failed sweep only keeps jobs longer.
      })
  }

  stats(): Record<string, unknown> {
    return {
      open_jobs: this.jobs.size,
      waiting_jobs: this.dependencies.size,
      // Not the queue's size: a cancelled task leaves its heap only when it reaches the top.
      waiting_tasks: [...this.jobs.values()].reduce((sum, job) => sum + job.waiting, 0),
      leases: this.leases.size,
      jobs_submitted: this.counters.submitted,
      tasks_assigned: this.counters.assigned,
      results_recorded: this.counters.recorded,
      results_rejected: this.counters.rejected,
      leases_expired: this.counters.leasesExpired,
      backup_copies: this.counters.backups,
      backup_wins: this.counters.backupWins,
      workers: this.workers.stats(),
    }
  }

  // ── Limits ───────────────────────────────────────────────────────────────

  /** Sets (or replaces) a limit; OVERLOADED past limitsMax. */
  async setLimit(limit: Limit): Promise<number> {
    const { value: isSet, lsn } = await this.options.write((writes) => writes.setLimit(limit, this.now(), limitsMax))
    if (!isSet) throw new TandemError('OVERLOADED', `the master holds ${limitsMax} limits, the most it takes: delete one first`)
    this.limits.set(limit)
    this.scheduleAssign()
    return lsn
  }

  async removeLimit(scope: string): Promise<number> {
    const { value: removed, lsn } = await this.options.write((writes) => writes.deleteLimit(scope))
    this.limits.delete(scope)
    if (!removed) throw new TandemError('LIMIT_NOT_FOUND', `no limit on ${scope}`)
    this.scheduleAssign()
    return lsn
  }

  limitsList(): Limit[] {
    return this.limits.list()
  }

  /**
   * Tasks running (leased, or being leased) by every key a limit or fairness counts under: each
   * limit's (limits.ts) and each group's own (`fair:KEY`, the empty key for jobs without one).
   */
  private runningByScope(): Map<string, number> {
    const running = new Map<string, number>()
    for (const lease of this.workers.leases()) this.countRunning(running, lease.task)
    return running
  }

  private countRunning(running: Map<string, number>, task: Task): void {
    const keys = [fairKey(task), ...(this.limits.isEmpty ? [] : this.limits.keysOf(task))]
    for (const key of keys) running.set(key, (running.get(key) ?? 0) + 1)
  }

  close(): void {
    this.isClosed = true
    clearTimeout(this.limitTimer)
    clearInterval(this.leaseTimer)
    clearInterval(this.retentionTimer)
    this.queue.close()
    this.events.removeAllListeners()
  }
}

class StaleLease extends Error {}

function leaseId(ref: LeaseRef): string {
  return `${keyOf(ref.job, ref.index)}@${ref.epoch}.${ref.token}`
}

function refOf(ref: LeaseRef): LeaseRef {
  return { job: ref.job, index: ref.index, epoch: ref.epoch, token: ref.token }
}

export function isFinished(state: JobState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled'
}

function notFound(id: string): TandemError {
  return new TandemError('JOB_NOT_FOUND', `no job ${id} (it may have passed its retention)`)
}

export type Submitted = { id: string; state: JobState; tasks: number; lsn: number; replayed: boolean; deduplicated?: true; debounced?: true; warning?: string }

/** What a submission's write did: a new job, or none (an idempotent replay, a dedupe, a debounce). */
type Outcome = { kind: 'new'; after: { id: string; state: JobState }[]; waits: boolean; results: string | undefined } | { kind: 'replayed'; row: JobRow } | { kind: 'deduplicated'; holder: DedupeHolder } | { kind: 'debounced'; task: Task }

/** A dedupe key's job answers for the key while it is unfinished, or for its window after it was created. */
function isLive(holder: DedupeHolder, now: number): boolean {
  return holder.window_ms === null ? holder.finished_at === null : now < holder.created_at + holder.window_ms
}

/** The same task, as a new object waiting with `input` until `runAfter` (the old one stays out of the queue). */
function copyOf(task: Task, input: string, runAfter: number): Task {
  return { ...newTask(task.job, task.index, input, task.token, runAfter), attempts: task.attempts, lostLeases: task.lostLeases }
}

const fairKey = (task: Task) => `fair:${task.job.options.group ?? ''}`

/** The job's tasks' mean run time so far; undefined before one finished. */
const meanRunMs = (job: Job) => (job.doneCount === 0 ? undefined : job.doneMsTotal / job.doneCount)

/**
 * Whether `a` runs before `b`: higher priority first; then the task whose group runs fewer tasks
 * now (groups share the slots fairly: one group's flood does not starve another); then FIFO.
 */
function runsFirst(a: Task, b: Task, running: () => ReadonlyMap<string, number>): boolean {
  if (a.job.options.priority !== b.job.options.priority) return a.job.options.priority > b.job.options.priority
  if (fairKey(a) === fairKey(b)) return runsBefore(a, b)
  const ra = running().get(fairKey(a)) ?? 0
  const rb = running().get(fairKey(b)) ?? 0
  return ra !== rb ? ra < rb : runsBefore(a, b)
}

function newTask(job: Job, index: number, input: string, token: number, runAfter: number): Task {
  return { job, index, input, phase: 'new', attempts: 0, lostLeases: 0, runAfter, token, lease: undefined, backup: undefined, progress: null, seq: 0 }
}

function jobFromRow(row: JobRow, open: number, dead: number): Job {
  return { id: row.id, name: row.name, options: JSON.parse(row.options) as JobOptions, lsn: row.lsn, createdAt: row.created_at, open, dead, waiting: 0, doneCount: 0, doneMsTotal: 0, isCancelled: false }
}

function taskFromRow(job: Job, row: TaskRow): Task {
  return { ...newTask(job, row.idx, row.input, row.lease_token, row.run_after), attempts: row.attempts, lostLeases: row.lost_leases }
}
