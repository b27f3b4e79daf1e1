/**
 * The replica's side of jobs: it runs the tasks its master leases to it, `concurrency` at once,
 * in worker threads, so a CPU-bound handler never holds up replication or heartbeats. The tasks
 * share `threads` threads (at most one per task), each going to the thread that runs the fewest:
 * a thread is a V8 isolate of ~10 MB, so one per task would cap a replica's concurrency by its
 * memory, not its work. A task starts once the replica has applied the job's LSN. On timeout or
 * cancel the handler's signal is aborted; a handler still running `killGraceMs` later is killed
 * with its thread, which is replaced. The other tasks that thread ran start again on another one
 * (the master never learns of it: they keep their leases and their deadlines). A thread that
 * dies on its own fails every task it ran, since any of them may have killed it.
 *
 * Results are kept until the master answers `recorded`: after a reconnect (or a new master)
 * they are sent again, and the leases they belong to are named in the `worker` message, so the
 * master does not expire a lease whose result is on its way.
 */
import { Worker } from 'node:worker_threads'
import { StatementLimits } from '../storage/index.ts'
import type { Logger } from '../shared/logger.ts'
import { messageOf } from '../shared/errors.ts'
import type { Assignment, LeaseRef, MasterMessage, ReplicaMessage } from '../protocol/messages.ts'

export interface ExecutorOptions {
  /** file: URL of the handlers module. */
  moduleUrl: string
  /** Tasks run at once. */
  concurrency: number
  /** Tasks the master may lease to this replica beyond `concurrency`: they wait here for a slot, so a slot that frees starts the next at once. */
  prefetch: number
  /** Worker threads the tasks share; at most `concurrency` are started. */
  threads: number
  dbPath: string
  killGraceMs: number
  /** Each `ctx.db` statement's time limit (--query-timeout; 0: none). */
  queryTimeoutMs?: number
  /** Resolves once this replica applied `lsn`; rejects after `timeoutMs`. */
  waitForLsn: (lsn: number, timeoutMs: number) => Promise<void>
  logger: Logger
}

type FromWorker =
  | { type: 'ready'; handlers: string[] }
  | { type: 'broken'; message: string }
  | { type: 'progress'; id: number; value: unknown }
  | { type: 'done'; id: number; ok: boolean; value?: string; error?: string }

interface Run {
  id: number
  assignment: Assignment
  thread: TaskThread | undefined
  timer: NodeJS.Timeout | undefined
  /** performance.now() by which the handler must be done, set when it first starts (its timeout). */
  deadline: number | undefined
  /** performance.now() when it first started on a thread. */
  startedAt: number | undefined
  /** Set once the run is being stopped: why, and whether a result is still owed. */
  stopping: { reason: string; reportAs: string | undefined } | undefined
}

/**
 * One worker thread; replaced when a handler must be killed. `guard` is shared with the thread
 * (see task-worker.ts): a thread is terminated only while it is outside SQLite, because ending
 * a thread inside a call into the SQLite binding aborts the whole process.
 */
class TaskThread {
  worker: Worker
  guard: Int32Array
  /** The tasks it runs, by run id. */
  runs = new Map<number, Run>()
  /** False from its start (or replacement) until its handlers are loaded: it takes no task then. */
  isReady = false

  constructor(worker: Worker, guard: Int32Array) {
    this.worker = worker
    this.guard = guard
  }
}

/**
 * guard[0]: the thread is in JavaScript (idle), inside a SQLite call, or killed. guard[1]: 1
 * once a kill is requested, so the thread starts no new SQLite call (a handler that queries in a
 * loop would otherwise almost never be seen idle). guard[2]: the id of the thread's `ctx.db`
 * connection for StatementLimits (0: none yet), so a kill stops the statement it waits for.
 */
export const threadState = { idle: 0, inSqlite: 1, killed: 2 } as const
const killRetryMs = 10

const keyOf = (ref: LeaseRef) => `${ref.job}#${ref.index}`

export class Executor {
  handlers: string[] = []
  private readonly options: ExecutorOptions
  private readonly threads: TaskThread[] = []
  private readonly runs = new Map<string, Run>()
  private readonly waiting: Run[] = []
  /** Results sent but not yet recorded by a master, by task. */
  private readonly unrecorded = new Map<string, Extract<ReplicaMessage, { type: 'result' }>>()
  private send: ((message: ReplicaMessage) => boolean) | undefined
  private nextRunId = 1
  private generation = 0
  private isClosed = false
  readonly counters = { started: 0, succeeded: 0, failed: 0, timedOut: 0, killed: 0, restarted: 0, ended: 0, accepted: 0, rejected: 0 }

  constructor(options: ExecutorOptions) {
    this.options = options
  }

  /** Starts the threads; rejects when the handlers module cannot be loaded or has no handler. */
  async start(): Promise<void> {
    const count = Math.max(1, Math.min(this.options.threads, this.options.concurrency))
    const ready = await Promise.all(Array.from({ length: count }, () => this.spawn()))
    this.handlers = ready[0] ?? []
    if (this.handlers.length === 0) throw new Error(`the jobs module ${this.options.moduleUrl} exports no functions: export an async function per handler`)
  }

  private spawn(replacing?: TaskThread): Promise<string[]> {
    const url = new URL(import.meta.url.endsWith('.ts') ? './task-worker.ts' : './task-worker.js', import.meta.url)
    const guard = new Int32Array(new SharedArrayBuffer(12))
    const workerData = { moduleUrl: this.options.moduleUrl, dbPath: this.options.dbPath, guard, queryTimeoutMs: this.options.queryTimeoutMs ?? 0 }
    const worker = new Worker(url, { workerData })
    const thread = replacing ?? new TaskThread(worker, guard)
    // A replacement was retired first (retire()): it holds no task and is not ready.
    thread.worker = worker
    thread.guard = guard
    if (replacing === undefined) this.threads.push(thread)
    return new Promise((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        // A replaced thread's last words: its tasks were finished or moved to the new one.
        if (thread.worker !== worker) return
        if (message.type === 'ready') {
          thread.isReady = true
          resolve(message.handlers)
          this.startWaiting()
        } else if (message.type === 'broken') {
          reject(new Error(`cannot load the jobs module ${this.options.moduleUrl}: ${message.message}`))
        } else if (message.type === 'progress') {
          const run = thread.runs.get(message.id)
          if (run !== undefined && run.stopping === undefined) this.send?.({ type: 'progress', ...refOf(run.assignment), value: message.value })
        } else {
          const run = thread.runs.get(message.id)
          if (run !== undefined) this.finish(run, message.ok ? { ok: true, value: message.value ?? 'null' } : { ok: false, error: message.error ?? 'the handler failed' })
        }
      })
      worker.on('error', (error) => {
        reject(error)
        this.options.logger.error({ err: error }, 'a job worker thread failed')
      })
      worker.on('exit', () => {
        if (thread.worker !== worker || this.isClosed) return
        // Died on its own (out of memory, process.exit in a handler): fail its tasks (any of
        // them may have done it, and would again), replace it.
        const lost = this.retire(thread)
        for (const run of lost) this.finish(run, { ok: false, error: 'the worker thread running the handler exited' })
        this.spawn(thread).catch((error: unknown) => this.options.logger.error({ err: error }, 'could not replace a job worker thread'))
      })
    })
  }

  /** A new connection to a master: say what this replica runs and holds, resend results. */
  connected(send: (message: ReplicaMessage) => boolean): void {
    this.send = send
    const running = [...this.runs.values()].filter((r) => r.stopping === undefined).map((r) => refOf(r.assignment))
    for (const result of this.unrecorded.values()) running.push(refOf(result))
    send({ type: 'worker', handlers: this.handlers, concurrency: this.options.concurrency, prefetch: this.options.prefetch, running })
    for (const result of this.unrecorded.values()) send(result)
  }

  /** The master's job messages. */
  receive(message: MasterMessage): void {
    if (this.isClosed) return
    if (message.type === 'assign') this.assign(message)
    else if (message.type === 'cancel') {
      const run = this.runs.get(keyOf(message))
      // A result already on its way is left alone: the master answers it (recorded or rejected).
      if (run !== undefined && run.assignment.token === message.token && run.assignment.epoch === message.epoch) this.stop(run, 'cancelled by the master', undefined)
    } else if (message.type === 'recorded') {
      const result = this.unrecorded.get(keyOf(message))
      if (result?.token !== message.token || result.epoch !== message.epoch) return
      this.unrecorded.delete(keyOf(message))
      if (message.accepted) this.counters.accepted++
      else {
        this.counters.rejected++
        this.options.logger.warn({ job: message.job, index: message.index, reason: message.reason }, 'the master rejected a task result')
      }
    }
  }

  private assign(assignment: Assignment): void {
    const key = keyOf(assignment)
    const current = this.runs.get(key)
    if (current !== undefined) {
      if (current.assignment.token === assignment.token && current.assignment.epoch === assignment.epoch) return
      this.stop(current, 'a newer lease of the same task replaced it', undefined)
    }
    this.unrecorded.delete(key)
    const run: Run = { id: this.nextRunId++, assignment, thread: undefined, timer: undefined, deadline: undefined, startedAt: undefined, stopping: undefined }
    this.runs.set(key, run)
    // The job must see every write acknowledged before it was submitted.
    this.options.waitForLsn(assignment.lsn, assignment.timeoutMs).then(
      () => {
        if (this.runs.get(key) !== run || run.stopping !== undefined) return
        this.waiting.push(run)
        this.startWaiting()
      },
      (error: unknown) => {
        if (this.runs.get(key) === run) this.finish(run, { ok: false, error: `the replica did not reach the job's LSN ${assignment.lsn}: ${messageOf(error)}` })
      },
    )
  }

  /** Tasks on a thread now, across all threads. Invariant: <= concurrency. */
  private get runningCount(): number {
    let count = 0
    for (const thread of this.threads) count += thread.runs.size
    return count
  }

  /** The ready thread that runs the fewest tasks. */
  private leastBusyThread(): TaskThread | undefined {
    let best: TaskThread | undefined
    for (const thread of this.threads) if (thread.isReady && (best === undefined || thread.runs.size < best.runs.size)) best = thread
    return best
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.runningCount < this.options.concurrency) {
      const thread = this.leastBusyThread()
      if (thread === undefined) return
      const run = this.waiting.shift()!
      if (run.stopping !== undefined || this.runs.get(keyOf(run.assignment)) !== run) continue
      const { assignment } = run
      thread.runs.set(run.id, run)
      run.thread = thread
      const now = performance.now()
      run.deadline ??= now + assignment.timeoutMs
      run.startedAt ??= now
      this.counters.started++
      thread.worker.postMessage({
        type: 'run',
        id: run.id,
        name: assignment.name,
        input: assignment.input,
        ...(assignment.after === undefined ? {} : { after: assignment.after }),
        generation: this.generation,
        task: { job: assignment.job, index: assignment.index, attempt: assignment.attempt },
      })
      run.timer = setTimeout(() => {
        this.counters.timedOut++
        this.stop(run, `timed out after ${assignment.timeoutMs} ms`, `timed out after ${assignment.timeoutMs} ms`)
      }, Math.max(0, run.deadline - now))
    }
  }

  /** Takes a thread out of service before it is replaced: it takes no task, and its tasks are off it. */
  private retire(thread: TaskThread): Run[] {
    const runs = [...thread.runs.values()]
    thread.isReady = false
    thread.runs = new Map()
    for (const run of runs) {
      clearTimeout(run.timer)
      run.timer = undefined
      run.thread = undefined
    }
    return runs
  }

  /**
   * Aborts the handler's signal; kills its thread if it has not returned `killGraceMs` later.
   * `reportAs`: the error to report as the task's result (a timeout); undefined reports nothing
   * (a cancel: the master no longer wants it).
   */
  private stop(run: Run, reason: string, reportAs: string | undefined): void {
    if (run.stopping !== undefined) return
    run.stopping = { reason, reportAs }
    clearTimeout(run.timer)
    const thread = run.thread
    if (thread === undefined) {
      this.finish(run, undefined)
      return
    }
    thread.worker.postMessage({ type: 'abort', id: run.id, reason })
    run.timer = setTimeout(() => {
      if (thread.runs.get(run.id) !== run) return
      this.counters.killed++
      this.options.logger.warn({ job: run.assignment.job, index: run.assignment.index, reason }, `the handler did not stop within ${this.options.killGraceMs} ms of the abort: killing its thread`)
      const old = { worker: thread.worker, guard: thread.guard }
      const lost = this.retire(thread)
      // The thread's other tasks did nothing wrong: they start again on another thread, ahead
      // of the queue. Those being stopped (this one among them) end with it.
      const rerun = lost.filter((other) => other.stopping === undefined)
      this.counters.restarted += rerun.length
      this.waiting.unshift(...rerun)
      for (const other of lost) if (other.stopping !== undefined) this.finish(other, undefined)
      this.spawn(thread).catch((error: unknown) => this.options.logger.error({ err: error }, 'could not replace a job worker thread'))
      killThread(old.worker, old.guard).then(
        () => this.counters.ended++,
        (error: unknown) => this.options.logger.error({ err: error }, 'could not end a job worker thread'),
      )
    }, this.options.killGraceMs)
  }

  /** The run is over; report its outcome unless it was cancelled. */
  private finish(run: Run, outcome: { ok: true; value: string } | { ok: false; error: string } | undefined): void {
    clearTimeout(run.timer)
    const key = keyOf(run.assignment)
    if (this.runs.get(key) === run) this.runs.delete(key)
    if (run.thread?.runs.get(run.id) === run) run.thread.runs.delete(run.id)
    run.thread = undefined
    const reportAs = run.stopping?.reportAs
    const final = run.stopping === undefined ? outcome : reportAs === undefined ? undefined : { ok: false as const, error: reportAs }
    if (final !== undefined) {
      if (final.ok) this.counters.succeeded++
      else this.counters.failed++
      // How long it ran here (not how long it waited in this replica's queue): what the master sizes prefetch by.
      const ms = run.startedAt === undefined ? undefined : Math.round((performance.now() - run.startedAt) * 1000) / 1000
      const result = { type: 'result' as const, ...refOf(run.assignment), ...final, ...(ms === undefined ? {} : { ms }) }
      this.unrecorded.set(key, result)
      this.send?.(result)
    }
    this.startWaiting()
  }

  /** A snapshot replaced the database file: handlers reopen it. */
  databaseReplaced(): void {
    this.generation++
  }

  /** This node is no longer a replica (promoted): stop everything it runs. */
  stopAll(reason: string): void {
    for (const run of [...this.runs.values()]) this.stop(run, reason, undefined)
    this.unrecorded.clear()
    this.send = undefined
  }

  stats(): Record<string, unknown> {
    return {
      handlers: this.handlers,
      concurrency: this.options.concurrency,
      prefetch: this.options.prefetch,
      threads: this.threads.length,
      running: this.runningCount,
      waiting: this.waiting.length,
      unrecorded_results: this.unrecorded.size,
      tasks_started: this.counters.started,
      tasks_succeeded: this.counters.succeeded,
      tasks_failed: this.counters.failed,
      tasks_timed_out: this.counters.timedOut,
      threads_killed: this.counters.killed,
      /** Tasks started again because another task's handler got their thread killed. */
      tasks_restarted: this.counters.restarted,
      /** Killed threads that have ended (a kill waits for a SQLite call under way to return). */
      threads_ended: this.counters.ended,
      results_accepted: this.counters.accepted,
      results_rejected: this.counters.rejected,
    }
  }

  async close(): Promise<void> {
    this.isClosed = true
    for (const run of this.runs.values()) clearTimeout(run.timer)
    await Promise.all(this.threads.map((t) => killThread(t.worker, t.guard)))
  }
}

/**
 * Terminates a worker thread once it is outside SQLite: marks it killed (after which its
 * `ctx.db` calls throw instead of entering SQLite), stops the statement under way, and waits for
 * that call to return.
 */
async function killThread(worker: Worker, guard: Int32Array): Promise<void> {
  Atomics.store(guard, 1, 1)
  while (Atomics.compareExchange(guard, 0, threadState.idle, threadState.killed) !== threadState.idle) {
    if (Atomics.load(guard, 0) === threadState.killed) break
    const connection = Atomics.load(guard, 2)
    if (connection !== 0) StatementLimits.forThisThread()?.cancel(connection)
    await new Promise((resolve) => setTimeout(resolve, killRetryMs))
  }
  await worker.terminate()
  const connection = Atomics.load(guard, 2)
  if (connection !== 0) StatementLimits.forThisThread()?.forget(connection)
}

function refOf(ref: LeaseRef): LeaseRef {
  return { job: ref.job, index: ref.index, epoch: ref.epoch, token: ref.token }
}
