/**
 * The master's scheduler: it takes jobs, leases their tasks to replicas with a free slot, and
 * records each task's outcome exactly once.
 *
 * Durable state is the queue's tables (job-schema.ts); every transition (queued, leased, done,
 * failed, dead, cancelled) is an internal write through the write pipeline, so it is
 * group-committed with everything else and replicates. What is only in memory: the ready
 * queues, which replica holds which lease and when it last renewed it, and progress. A new
 * master (a restart, a promotion) rebuilds that from the tables (`start`).
 *
 * Leases: an assignment carries the master's epoch and a token that only grows per task.
 * Every acknowledgement from a replica renews the leases it holds; a lease not renewed for
 * `leaseMs` expires and its task is queued again. A result counts only when it names the live
 * lease; the write that records it checks the lease again in SQL, so a task's result is
 * recorded once even if two copies race.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Clock } from '../shared/clock.ts'
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { LeaseRef, MasterMessage, ReplicaMessage } from '../protocol/messages.ts'
import { retryDelayMs } from './backoff.ts'
import { Heap } from './heap.ts'
import type { JobState } from './job-schema.ts'
import type { JobOptions, JobSpec } from './job-spec.ts'
import type { JobReads, JobRow, JobWrites, TaskRow } from './job-store.ts'

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
  retainMs: number
  retainCount: number
  random?: () => number
}

export type JobEvent =
  | { event: 'task'; data: { job: string; index: number; state: string; attempts: number; worker: string | null; error?: string } }
  | { event: 'progress'; data: { job: string; index: number; value: unknown } }
  | { event: 'job'; data: { job: string; state: JobState } }

interface Job {
  id: string
  name: string
  options: JobOptions
  lsn: number
  createdAt: number
  /** Tasks not yet done, dead or cancelled. Reaches 0 exactly once: then the job is finished. */
  open: number
  dead: number
  isCancelled: boolean
}

interface Lease {
  epoch: number
  token: number
  worker: string
  renewedAt: number
}

interface Task {
  job: Job
  index: number
  input: string
  /** waiting: queued or failed in the table; leasing/ending: a write about it is in flight. */
  state: 'waiting' | 'leasing' | 'leased' | 'ending' | 'gone'
  attempts: number
  lostLeases: number
  runAfter: number
  /** The newest lease token issued (the table's lease_token). */
  token: number
  lease: Lease | undefined
  progress: unknown
  seq: number
}

interface Worker {
  nodeId: string
  handlers: Set<string>
  concurrency: number
  running: Set<Task>
  isConnected: boolean
  /** When it last acknowledged: one silent for a lease period gets no new task (it may be paused). */
  lastAckAt: number
}

const keyOf = (job: string, index: number) => `${job}#${index}`

export class Scheduler {
  private readonly options: SchedulerOptions
  private readonly jobs = new Map<string, Job>()
  private readonly tasks = new Map<string, Task>()
  /** Waiting tasks that may run now, one heap per handler: higher priority first, then FIFO. */
  private readonly ready = new Map<string, Heap<Task>>()
  /** Waiting tasks with a runAfter in the future (delay, backoff). */
  private readonly delayed = new Heap<Task>((a, b) => a.runAfter < b.runAfter)
  private readonly leased = new Set<Task>()
  private readonly workers = new Map<string, Worker>()
  private readonly events = new EventEmitter()
  private readonly random: () => number
  private seq = 0
  private isAssignScheduled = false
  private delayTimer: NodeJS.Timeout | undefined
  private delayTimerAt = Infinity
  private readonly leaseTimer: NodeJS.Timeout
  private readonly retentionTimer: NodeJS.Timeout
  private isClosed = false
  readonly counters = { submitted: 0, recorded: 0, rejected: 0, leasesExpired: 0, assigned: 0 }

  constructor(options: SchedulerOptions) {
    this.options = options
    this.random = options.random ?? Math.random
    this.events.setMaxListeners(0)
    this.leaseTimer = setInterval(() => this.expireLeases(), Math.max(20, Math.min(250, options.leaseMs / 4)))
    this.leaseTimer.unref()
    this.retentionTimer = setInterval(() => this.expireJobs(), 60_000)
    this.retentionTimer.unref()
  }

  /**
   * Carries on with the queue as the tables hold it (a new master after a restart or a
   * promotion). Leases found there belong to a replica that may still be running the task: they
   * are kept for one lease period (the grace a replica has to say it holds them), then expire.
   */
  start(): void {
    const now = this.options.clock.now()
    for (const row of this.options.reads.openJobs()) {
      const counts = this.options.reads.counts(row.id)
      this.jobs.set(row.id, this.jobFromRow(row, counts.queued + counts.leased + counts.failed, counts.dead))
    }
    let loaded = 0
    for (const row of this.options.reads.openTasks()) {
      const job = this.jobs.get(row.job_id)
      if (job === undefined) continue
      const task = this.taskFromRow(job, row)
      if (row.state === 'leased' && row.lease_epoch !== null && row.worker !== null) {
        task.state = 'leased'
        task.lease = { epoch: row.lease_epoch, token: row.lease_token, worker: row.worker, renewedAt: now }
        this.tasks.set(keyOf(job.id, task.index), task)
        this.leased.add(task)
      } else {
        this.enqueue(task)
      }
      loaded++
    }
    if (loaded > 0) this.options.logger.info({ jobs: this.jobs.size, tasks: loaded, leased: this.leased.size }, 'carrying on with the job queue')
    this.scheduleAssign()
  }

  // ── Jobs ─────────────────────────────────────────────────────────────────

  async submit(spec: JobSpec): Promise<{ id: string; state: JobState; tasks: number; lsn: number; replayed: boolean }> {
    const now = this.options.clock.now()
    const id = newJobId(now)
    const runAfter = now + spec.delayMs
    const { value: existing, lsn } = await this.options.write((writes, nextLsn) => {
      if (spec.idempotencyKey !== undefined) {
        const row = writes.jobByKey(spec.idempotencyKey)
        if (row !== undefined) return row
      }
      writes.insertJob({ id, name: spec.name, options: spec.options, inputs: spec.inputs, lsn: nextLsn, idempotencyKey: spec.idempotencyKey, requestHash: spec.hash, createdAt: now, runAfter })
      return undefined
    })
    if (existing !== undefined) {
      if (existing.request_hash !== spec.hash) {
        throw new TandemError('IDEMPOTENCY_KEY_REUSED', `idempotency_key ${spec.idempotencyKey} was used for a different job (${existing.id}); use a new key for a new job`)
      }
      return { id: existing.id, state: existing.state, tasks: existing.task_count, lsn: existing.lsn, replayed: true }
    }
    const job: Job = { id, name: spec.name, options: spec.options, lsn, createdAt: now, open: spec.inputs.length, dead: 0, isCancelled: false }
    this.jobs.set(id, job)
    for (let index = 0; index < spec.inputs.length; index++) {
      this.enqueue({ job, index, input: spec.inputs[index]!, state: 'waiting', attempts: 0, lostLeases: 0, runAfter, token: 0, lease: undefined, progress: null, seq: 0 })
    }
    this.counters.submitted++
    this.scheduleAssign()
    return { id, state: 'queued', tasks: spec.inputs.length, lsn, replayed: false }
  }

  async cancel(id: string): Promise<void> {
    const row = this.options.reads.job(id)
    if (row === undefined) throw notFound(id)
    if (row.finished_at !== null) throw new TandemError('JOB_FINISHED', `job ${id} already finished (${row.state}); nothing to cancel`)
    const job = this.jobs.get(id)
    await this.options.write((writes) => writes.cancel(id, this.options.clock.now()))
    if (job !== undefined) {
      job.isCancelled = true
      for (let index = 0; index < row.task_count; index++) {
        const task = this.tasks.get(keyOf(id, index))
        if (task === undefined) continue
        if (task.lease !== undefined) this.sendCancel(task, task.lease)
        this.forget(task)
      }
      this.jobs.delete(id)
    }
    this.emit({ event: 'job', data: { job: id, state: 'cancelled' } })
    this.scheduleAssign()
  }

  /** Queues a job's dead and cancelled tasks again, with fresh attempts. */
  async retry(id: string): Promise<number> {
    const row = this.options.reads.job(id)
    if (row === undefined) throw notFound(id)
    const { value: rows } = await this.options.write((writes) => writes.retry(id, this.options.clock.now()))
    if (rows.length === 0) throw new TandemError('JOB_NOT_RETRYABLE', `job ${id} has no dead or cancelled tasks to retry`)
    let job = this.jobs.get(id)
    if (job === undefined) {
      job = this.jobFromRow(row, 0, 0)
      this.jobs.set(id, job)
    }
    job.isCancelled = false
    for (const taskRow of rows) {
      if (this.tasks.has(keyOf(id, taskRow.idx))) continue
      job.open++
      this.enqueue(this.taskFromRow(job, taskRow))
    }
    job.dead = 0
    this.emit({ event: 'job', data: { job: id, state: 'running' } })
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

  /** In-memory progress of a job's tasks, by index. */
  progressOf(id: string): Map<number, unknown> {
    const progress = new Map<number, unknown>()
    const job = this.jobs.get(id)
    if (job === undefined) return progress
    for (const task of this.leased) if (task.job === job && task.progress !== null) progress.set(task.index, task.progress)
    return progress
  }

  // ── Replicas ─────────────────────────────────────────────────────────────

  /** A replica's job messages. */
  receive(nodeId: string, message: ReplicaMessage): void {
    if (message.type === 'worker') this.register(nodeId, message.handlers, message.concurrency, message.running)
    else if (message.type === 'result') this.record(nodeId, message)
    else if (message.type === 'progress') this.progress(message)
  }

  /** Every acknowledgement renews every lease the replica holds. */
  renew(nodeId: string): void {
    const worker = this.workers.get(nodeId)
    if (worker === undefined) return
    const now = this.options.clock.now()
    worker.lastAckAt = now
    for (const task of worker.running) if (task.lease !== undefined) task.lease.renewedAt = now
  }

  disconnected(nodeId: string): void {
    const worker = this.workers.get(nodeId)
    if (worker !== undefined) worker.isConnected = false
  }

  /**
   * A replica says what it can run and which leases it still holds. Its leases that it does not
   * name are lost (it restarted): they expire now. Ones it names that are not live any more are
   * cancelled there.
   */
  private register(nodeId: string, handlers: string[], concurrency: number, running: LeaseRef[]): void {
    let worker = this.workers.get(nodeId)
    if (worker === undefined) {
      worker = { nodeId, handlers: new Set(), concurrency: 0, running: new Set(), isConnected: true, lastAckAt: 0 }
      this.workers.set(nodeId, worker)
    }
    worker.lastAckAt = this.options.clock.now()
    worker.handlers = new Set(handlers)
    worker.concurrency = Math.max(0, Math.min(1024, Math.floor(concurrency)))
    worker.isConnected = true
    const held = new Set(running.map((r) => `${keyOf(r.job, r.index)}@${r.epoch}.${r.token}`))
    const now = this.options.clock.now()
    const lost: Task[] = []
    for (const task of this.leased) {
      const lease = task.lease
      if (lease?.worker !== nodeId) continue
      if (held.has(`${keyOf(task.job.id, task.index)}@${lease.epoch}.${lease.token}`)) {
        lease.renewedAt = now
        worker.running.add(task)
      } else if (task.state === 'leased') {
        lost.push(task)
      }
    }
    for (const ref of running) {
      const task = this.tasks.get(keyOf(ref.job, ref.index))
      const lease = task?.lease
      if (lease === undefined || lease.worker !== nodeId || lease.epoch !== ref.epoch || lease.token !== ref.token) {
        this.options.send(nodeId, { type: 'cancel', ...ref })
      }
    }
    this.options.logger.info({ replica: nodeId, handlers, concurrency, holds: running.length, lost: lost.length }, 'replica runs jobs')
    if (lost.length > 0) this.loseLeases(lost, `replica ${nodeId} restarted and no longer runs it`)
    this.scheduleAssign()
  }

  private liveTask(ref: LeaseRef): Task | undefined {
    const task = this.tasks.get(keyOf(ref.job, ref.index))
    const lease = task?.lease
    if (task?.state !== 'leased' || lease === undefined || lease.epoch !== ref.epoch || lease.token !== ref.token) return undefined
    return task
  }

  private progress(message: LeaseRef & { value: unknown }): void {
    const task = this.liveTask(message)
    if (task === undefined) return
    task.progress = message.value
    this.emit({ event: 'progress', data: { job: task.job.id, index: task.index, value: message.value } })
  }

  /** A task ended on a replica: record it if its lease is the live one; otherwise reject it. */
  private record(nodeId: string, message: LeaseRef & { ok: boolean; value?: string; error?: string }): void {
    const task = this.liveTask(message)
    if (task === undefined) {
      this.reject(nodeId, message, 'the lease is not live (it expired, the task was cancelled, or it was recorded already)')
      return
    }
    const lease = task.lease!
    const { job } = task
    const now = this.options.clock.now()
    this.release(task)
    task.state = 'ending'
    const attempts = task.attempts + 1
    type Outcome = { state: 'done'; result: string } | { state: 'failed' | 'dead'; error: string; runAfter: number }
    let outcome: Outcome
    if (message.ok) outcome = { state: 'done', result: message.value ?? 'null' }
    else {
      const error = message.error ?? 'the handler failed'
      outcome = attempts >= job.options.attempts ? { state: 'dead', error, runAfter: now } : { state: 'failed', error, runAfter: now + retryDelayMs(job.options.backoff, attempts, this.random) }
    }
    const isTerminal = outcome.state !== 'failed'
    if (isTerminal) job.open--
    if (outcome.state === 'dead') job.dead++
    const finishes = isTerminal && job.open === 0 && !job.isCancelled
    const jobState: JobState = job.dead > 0 ? 'failed' : 'completed'
    this.options
      .write((writes) => {
        if (!writes.endLease(job.id, task.index, lease, outcome, now)) throw new StaleLease()
        if (finishes) writes.finishJob(job.id, jobState, now)
      })
      .then(() => {
        this.counters.recorded++
        task.attempts = attempts
        task.lease = undefined
        this.options.send(nodeId, { type: 'recorded', ...refOf(message), accepted: true })
        this.emit({ event: 'task', data: { job: job.id, index: task.index, state: outcome.state, attempts, worker: nodeId, ...(outcome.state === 'done' ? {} : { error: outcome.error }) } })
        if (outcome.state === 'failed') {
          task.runAfter = outcome.runAfter
          this.enqueue(task)
        } else {
          this.forget(task)
        }
        if (finishes) {
          this.jobs.delete(job.id)
          this.emit({ event: 'job', data: { job: job.id, state: jobState } })
        }
        this.scheduleAssign()
      })
      .catch((error: unknown) => {
        if (isTerminal) job.open++
        if (outcome.state === 'dead') job.dead--
        if (error instanceof StaleLease) {
          task.lease = undefined
          this.reject(nodeId, message, 'the lease is not live')
          return
        }
        // Not recorded (the master is deposed, the disk failed): the replica sends it again
        // after it reconnects, to whichever master then holds the queue.
        task.state = 'leased'
        this.options.logger.warn({ err: error, job: job.id, index: task.index }, 'could not record a task result')
      })
  }

  private reject(nodeId: string, ref: LeaseRef, reason: string): void {
    this.counters.rejected++
    this.options.logger.info({ replica: nodeId, job: ref.job, index: ref.index, epoch: ref.epoch, token: ref.token }, `rejected a result: ${reason}`)
    this.options.send(nodeId, { type: 'recorded', ...refOf(ref), accepted: false, reason })
  }

  // ── Assignment ───────────────────────────────────────────────────────────

  private scheduleAssign(): void {
    if (this.isAssignScheduled || this.isClosed) return
    this.isAssignScheduled = true
    setImmediate(() => {
      this.isAssignScheduled = false
      this.assign()
    })
  }

  /**
   * Pairs waiting tasks with free slots, highest priority first; each task goes to a replica
   * that has the handler and a free slot, preferring one that has already applied the job's LSN
   * (it can start at once), then the least loaded. One write leases the whole batch.
   */
  private assign(): void {
    this.promoteDue()
    const picks: { task: Task; worker: Worker; token: number }[] = []
    for (;;) {
      let best: { task: Task; worker: Worker; heap: Heap<Task> } | undefined
      for (const [name, heap] of this.ready) {
        const task = peekWaiting(heap)
        if (task === undefined) continue
        if (best !== undefined && !runsBefore(task, best.task)) continue
        const worker = this.chooseWorker(name, task.job.lsn)
        if (worker !== undefined) best = { task, worker, heap }
      }
      if (best === undefined) break
      best.heap.pop()
      best.task.state = 'leasing'
      best.worker.running.add(best.task)
      picks.push({ task: best.task, worker: best.worker, token: best.task.token + 1 })
    }
    if (picks.length === 0) return
    const epoch = this.options.epoch()
    const now = this.options.clock.now()
    this.options
      .write((writes) => picks.map((p) => writes.lease(p.task.job.id, p.task.index, epoch, p.token, p.worker.nodeId, now)))
      .then(({ value: leasedOk }) => {
        picks.forEach(({ task, worker, token }, i) => {
          if (!leasedOk[i]) {
            worker.running.delete(task)
            this.options.logger.error({ job: task.job.id, index: task.index }, 'a task the scheduler held as waiting was not waiting in the table; dropping it from memory')
            this.forget(task)
            return
          }
          task.token = token
          task.lease = { epoch, token, worker: worker.nodeId, renewedAt: this.options.clock.now() }
          task.progress = null
          if (task.job.isCancelled || task.state !== 'leasing') {
            this.sendCancel(task, task.lease)
            worker.running.delete(task)
            return
          }
          task.state = 'leased'
          this.leased.add(task)
          this.counters.assigned++
          const sent = this.options.send(worker.nodeId, {
            type: 'assign',
            job: task.job.id,
            index: task.index,
            epoch,
            token,
            name: task.job.name,
            input: task.input,
            lsn: task.job.lsn,
            timeoutMs: task.job.options.timeoutMs,
            attempt: task.attempts + 1,
          })
          if (!sent) this.loseLeases([task], `replica ${worker.nodeId} disconnected before the assignment was sent`)
          this.emit({ event: 'task', data: { job: task.job.id, index: task.index, state: 'running', attempts: task.attempts, worker: worker.nodeId } })
        })
        this.scheduleAssign()
      })
      .catch((error: unknown) => {
        for (const { task, worker } of picks) {
          worker.running.delete(task)
          if (task.state === 'leasing') this.enqueue(task)
        }
        if (!this.isClosed) this.options.logger.warn({ err: error, tasks: picks.length }, `could not lease tasks: ${messageOf(error)}`)
      })
  }

  private chooseWorker(name: string, lsn: number): Worker | undefined {
    let best: Worker | undefined
    let bestScore = Infinity
    const now = this.options.clock.now()
    for (const worker of this.workers.values()) {
      if (!worker.isConnected || !worker.handlers.has(name) || worker.running.size >= worker.concurrency) continue
      if (now - worker.lastAckAt >= this.options.leaseMs) continue
      const isCaughtUp = (this.options.appliedLsn(worker.nodeId) ?? 0) >= lsn
      const score = (isCaughtUp ? 0 : 2) + worker.running.size / worker.concurrency
      if (score < bestScore) {
        best = worker
        bestScore = score
      }
    }
    return best
  }

  // ── Leases ───────────────────────────────────────────────────────────────

  private expireLeases(): void {
    const now = this.options.clock.now()
    const expired: Task[] = []
    for (const task of this.leased) {
      if (task.state === 'leased' && task.lease !== undefined && now - task.lease.renewedAt > this.options.leaseMs) expired.push(task)
    }
    if (expired.length > 0) this.loseLeases(expired, `its replica did not renew the lease within ${this.options.leaseMs} ms`)
  }

  /** The tasks' replicas lost them: queue them again (or dead, past lostLeasesMax). */
  private loseLeases(tasks: Task[], reason: string): void {
    const now = this.options.clock.now()
    const ends = tasks.map((task) => {
      const lease = task.lease!
      this.release(task)
      task.state = 'ending'
      const isDead = task.lostLeases + 1 >= this.options.lostLeasesMax
      if (isDead) {
        task.job.open--
        task.job.dead++
      }
      const finishes = isDead && task.job.open === 0 && !task.job.isCancelled
      return { task, lease, isDead, finishes, error: `lease lost: ${reason}` }
    })
    this.counters.leasesExpired += tasks.length
    this.options
      .write((writes) =>
        ends.map(({ task, lease, isDead, finishes, error }) => {
          const ok = writes.endLease(task.job.id, task.index, lease, { state: isDead ? 'dead' : 'queued', lostLease: true, error }, now)
          if (ok && finishes) writes.finishJob(task.job.id, 'failed', now)
          return ok
        }),
      )
      .then(({ value: ok }) => {
        // No cancel is sent: a replica that lost its lease is unreachable or paused; if it comes
        // back and reports, the result is simply rejected (and it learns so).
        ends.forEach(({ task, lease, isDead, finishes, error }, i) => {
          task.lease = undefined
          if (!ok[i]) {
            this.forget(task)
            return
          }
          task.lostLeases++
          this.options.logger.warn({ job: task.job.id, index: task.index, replica: lease.worker, isDead }, error)
          this.emit({ event: 'task', data: { job: task.job.id, index: task.index, state: isDead ? 'dead' : 'queued', attempts: task.attempts, worker: null, error } })
          if (!isDead) this.enqueue(task)
          else this.forget(task)
          if (finishes) {
            this.jobs.delete(task.job.id)
            this.emit({ event: 'job', data: { job: task.job.id, state: 'failed' } })
          }
        })
        this.scheduleAssign()
      })
      .catch((error: unknown) => {
        for (const { task, lease, isDead } of ends) {
          if (isDead) {
            task.job.open++
            task.job.dead--
          }
          task.state = 'leased'
          task.lease = lease
          this.leased.add(task)
        }
        if (!this.isClosed) this.options.logger.warn({ err: error }, 'could not expire leases; retrying')
      })
  }

  private sendCancel(task: Task, lease: Lease): void {
    this.options.send(lease.worker, { type: 'cancel', job: task.job.id, index: task.index, epoch: lease.epoch, token: lease.token })
  }

  /** Frees the task's slot on its replica. */
  private release(task: Task): void {
    this.leased.delete(task)
    const worker = task.lease === undefined ? undefined : this.workers.get(task.lease.worker)
    worker?.running.delete(task)
  }

  // ── Queues ───────────────────────────────────────────────────────────────

  private enqueue(task: Task): void {
    task.state = 'waiting'
    task.seq = ++this.seq
    this.tasks.set(keyOf(task.job.id, task.index), task)
    if (task.runAfter > this.options.clock.now()) {
      this.delayed.push(task)
      this.armDelayTimer()
      return
    }
    let heap = this.ready.get(task.job.name)
    if (heap === undefined) {
      heap = new Heap(runsBefore)
      this.ready.set(task.job.name, heap)
    }
    heap.push(task)
  }

  /** Moves delayed tasks whose time has come to the ready queues. */
  private promoteDue(): void {
    const now = this.options.clock.now()
    for (let task = this.delayed.peek(); task !== undefined && task.runAfter <= now; task = this.delayed.peek()) {
      this.delayed.pop()
      if (task.state === 'waiting') this.enqueue(task)
    }
    this.armDelayTimer()
  }

  private armDelayTimer(): void {
    const next = this.delayed.peek()
    if (next === undefined || next.runAfter >= this.delayTimerAt) return
    clearTimeout(this.delayTimer)
    this.delayTimerAt = next.runAfter
    this.delayTimer = setTimeout(() => {
      this.delayTimerAt = Infinity
      this.delayTimer = undefined
      this.scheduleAssign()
    }, Math.max(1, next.runAfter - this.options.clock.now()))
    this.delayTimer.unref()
  }

  private forget(task: Task): void {
    this.release(task)
    task.state = 'gone'
    this.tasks.delete(keyOf(task.job.id, task.index))
  }

  private jobFromRow(row: JobRow, open: number, dead: number): Job {
    return { id: row.id, name: row.name, options: JSON.parse(row.options) as JobOptions, lsn: row.lsn, createdAt: row.created_at, open, dead, isCancelled: false }
  }

  private taskFromRow(job: Job, row: TaskRow): Task {
    return { job, index: row.idx, input: row.input, state: 'waiting', attempts: row.attempts, lostLeases: row.lost_leases, runAfter: row.run_after, token: row.lease_token, lease: undefined, progress: null, seq: 0 }
  }

  private emit(event: JobEvent): void {
    this.events.emit(event.data.job, event)
  }

  private expireJobs(): void {
    const now = this.options.clock.now()
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
    let waiting = this.delayed.size
    for (const heap of this.ready.values()) waiting += heap.size
    return {
      open_jobs: this.jobs.size,
      waiting_tasks: waiting,
      leased_tasks: this.leased.size,
      jobs_submitted: this.counters.submitted,
      tasks_assigned: this.counters.assigned,
      results_recorded: this.counters.recorded,
      results_rejected: this.counters.rejected,
      leases_expired: this.counters.leasesExpired,
      workers: [...this.workers.values()].map((w) => ({ id: w.nodeId, connected: w.isConnected, handlers: [...w.handlers], concurrency: w.concurrency, running: w.running.size })),
    }
  }

  close(): void {
    this.isClosed = true
    clearInterval(this.leaseTimer)
    clearInterval(this.retentionTimer)
    clearTimeout(this.delayTimer)
    this.events.removeAllListeners()
  }
}

class StaleLease extends Error {}

/** Higher priority first, then first queued. */
function runsBefore(a: Task, b: Task): boolean {
  const pa = a.job.options.priority
  const pb = b.job.options.priority
  return pa !== pb ? pa > pb : a.seq < b.seq
}

/** The first task in the heap still waiting; ones cancelled meanwhile are dropped. */
function peekWaiting(heap: Heap<Task>): Task | undefined {
  for (let task = heap.peek(); task !== undefined; task = heap.peek()) {
    if (task.state === 'waiting') return task
    heap.pop()
  }
  return undefined
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

/** Sortable by creation time, unique: `j_` + time (base 36) + 64 random bits. */
function newJobId(now: number): string {
  return `j_${Math.floor(now).toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`
}
