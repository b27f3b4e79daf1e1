/**
 * Client reads on a pool of read threads, so that a node reads on every core: each thread holds
 * its own read-only connection and statement cache (read-worker.ts), and the main thread keeps
 * HTTP, replication and the writer. A read goes to the thread with the fewest reads in flight;
 * each thread takes at most `queueMax` of them, and a read that finds every thread full is
 * refused with OVERLOADED rather than queued without bound.
 *
 * A read is posted at once to a thread with nothing in flight; reads for a busy thread wait in
 * its outbox until the end of the event loop's turn (setImmediate) and go as one message (see
 * read-protocol.ts), so under load one message carries many reads each way.
 *
 * Results come back by structured clone, which keeps bigints (64-bit integers stay exact) and
 * Uint8Arrays (BLOBs) as they are. The HTTP API asks for its answer as JSON text instead
 * (queryJson): one string is much cheaper to clone than the rows, and the formatting runs here
 * on the read threads rather than on the main thread.
 *
 * A thread that dies is replaced; the reads it held are sent once more (a read changes nothing,
 * so running it again is safe) and fail with a clear error if their second thread dies too.
 */
import { Worker } from 'node:worker_threads'
import { workerEntry } from '../shared/worker-entry.ts'
import { TandemError } from '../shared/errors.ts'
import type { ReadStops } from '../storage/statement-limits.ts'
import type { Logger } from '../shared/logger.ts'
import { ReadCancels } from './read-cancels.ts'
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import type { SchemaGeneration, SqlStatement, StatementResult } from '../storage/index.ts'
import { connectionState, type ReadReply, type ReadRequest, type ReadWorkerData, type ToReadWorker } from './read-protocol.ts'

export interface ReadPoolOptions {
  dbPath: string
  /** The node's schema generation, shared with every read thread. */
  schema: SchemaGeneration
  /** At least 1. */
  threads: number
  /** Reads queued or running on one thread, at most. */
  queueMax: number
  logger: Logger
  /** How long closeConnections() waits for one thread to close its connection. */
  closeWaitMs?: number
  /** Threads a read is sent to before it fails, when each one dies under it. */
  attemptsMax?: number
  /** Told what each answered read took on its thread. */
  onAnswered?: (statements: readonly SqlStatement[], micros: number) => void
  /** Each statement's time limit unless a read says otherwise (--query-timeout; 0: none). */
  queryTimeoutMs?: number
}

interface PendingRead {
  statements: readonly SqlStatement[]
  transaction: boolean
  /** Set for queryJson: the thread answers JSON text (a string) instead of results. */
  format: FormatOptions | undefined
  limitMs: number | undefined
  /** Threads this read was posted to; at most attemptsMax. */
  attempts: number
  /** Answered (or cancelled): a later reply for it is dropped. */
  settled: boolean
  /** Where it was last dispatched, under which id. */
  placed?: { thread: ReadThread; id: number }
  resolve: (results: StatementResult[] | string) => void
  reject: (error: Error) => void
}

interface ReadThread {
  index: number
  worker: Worker | undefined
  /** Invariant: inFlight.size <= queueMax. Holds the outbox's reads too. */
  inFlight: Map<number, PendingRead>
  /** Reads not yet posted to `worker`; emptied by flush(). */
  outbox: ReadRequest[]
  served: number
  restarts: number
  /** Deaths in a row without a read answered in between: spaces restarts out. */
  failuresInRow: number
}

const restartDelayMsMax = 2000

/**
 * A read thread's V8 old generation, at most: garbage from large results (each read may hold up to
 * --max-result-bytes) is collected before a thread's heap grows past it. Measured: ten 10M-row
 * reads in a row, each refused at the result limit, took a replica to 1.6 GB before V8 collected
 * without it.
 */
const readThreadHeapMb = 512

export class ReadPool {
  private readonly options: Required<Omit<ReadPoolOptions, 'onAnswered'>> & Pick<ReadPoolOptions, 'onAnswered'>
  /** How a read whose client went away is stopped (read-cancels.ts). */
  private readonly cancels: ReadCancels
  private cancelled = 0
  private readonly threads: ReadThread[] = []
  /** control[0] is 1 while the database file is being replaced (see read-worker.ts). */
  private readonly control = new Int32Array(new SharedArrayBuffer(4))
  private readonly states: Int32Array
  private nextId = 1
  private nextThread = 0
  private isFlushScheduled = false
  private overloaded = 0
  private isClosed = false

  constructor(options: ReadPoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new TandemError('BAD_REQUEST', `a read pool needs at least one thread, not ${options.threads}`)
    if (!Number.isInteger(options.queueMax) || options.queueMax < 1) throw new TandemError('BAD_REQUEST', `readQueueMax must be a positive integer, not ${options.queueMax}`)
    this.options = { closeWaitMs: 10_000, attemptsMax: 2, queryTimeoutMs: 0, ...options }
    this.states = new Int32Array(new SharedArrayBuffer(4 * options.threads))
    this.cancels = new ReadCancels(options.threads)
    for (let index = 0; index < options.threads; index++) {
      const thread: ReadThread = { index, worker: undefined, inFlight: new Map(), outbox: [], served: 0, restarts: 0, failuresInRow: 0 }
      this.threads.push(thread)
      this.spawn(thread)
    }
  }

  /** Every running thread has a read in flight (a read sent now would wait behind another). */
  get isBusy(): boolean {
    return this.threads.every((t) => t.worker === undefined || t.inFlight.size > 0)
  }

  /** Runs the statements on the least busy read thread. Rejects with OVERLOADED when all are full. */
  query(statements: readonly SqlStatement[], transaction: boolean, stops: ReadStops = {}): Promise<StatementResult[]> {
    // A read without format is answered with results (read-protocol.ts).
    return this.submit(statements, transaction, undefined, stops) as Promise<StatementResult[]>
  }

  /** query(), answered as the HTTP API's `results` JSON text (see read-answer.ts). */
  queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions, stops: ReadStops = {}): Promise<string> {
    // A read with format is answered with a string (read-protocol.ts).
    return this.submit(statements, transaction, format, stops) as Promise<string>
  }

  private submit(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions | undefined, stops: ReadStops): Promise<StatementResult[] | string> {
    if (this.isClosed) return Promise.reject(new TandemError('SHUTTING_DOWN', 'the node is stopping'))
    const { signal } = stops
    if (signal?.aborted === true) return Promise.reject(cancelledError())
    return new Promise((resolve, reject) => {
      const read: PendingRead = { statements, transaction, format, limitMs: stops.limitMs, attempts: 0, settled: false, resolve, reject }
      if (signal !== undefined) {
        const onAbort = () => this.cancel(read)
        signal.addEventListener('abort', onAbort, { once: true })
        read.resolve = (results) => {
          signal.removeEventListener('abort', onAbort)
          resolve(results)
        }
        read.reject = (error) => {
          signal.removeEventListener('abort', onAbort)
          reject(error)
        }
      }
      this.dispatch(read)
    })
  }

  /**
   * The read's client went away: a read not yet posted is dropped here; a posted one is marked
   * for its thread to skip, and stopped if it is running (see ReadWorkerData).
   */
  private cancel(read: PendingRead): void {
    if (read.settled) return
    this.cancelled++
    this.settle(read, { error: cancelledError() })
    const { thread, id } = read.placed ?? {}
    if (thread === undefined || id === undefined || thread.inFlight.get(id) !== read) return
    const queued = thread.outbox.findIndex((r) => r.id === id)
    if (queued >= 0) {
      thread.outbox.splice(queued, 1)
      thread.inFlight.delete(id)
      return
    }
    this.cancels.cancel(thread.index, id)
  }

  private settle(read: PendingRead, outcome: { error: Error } | { results: StatementResult[] | string }): void {
    if (read.settled) return
    read.settled = true
    if ('error' in outcome) read.reject(outcome.error)
    else read.resolve(outcome.results)
  }

  private dispatch(read: PendingRead): void {
    const thread = this.leastBusy()
    if (thread?.worker === undefined) {
      this.settle(read, { error: new TandemError('NOT_READY', 'no read thread is running (they are restarting); retry shortly') })
      return
    }
    if (thread.inFlight.size >= this.options.queueMax) {
      this.overloaded++
      this.settle(read, { error: new TandemError('OVERLOADED', `every read thread has ${this.options.queueMax} reads queued (${this.threads.length} threads); retry later`) })
      return
    }
    // Ids fit the Int32Arrays the threads share (read-protocol.ts).
    const id = this.nextId
    this.nextId = this.nextId === 0x7fffffff ? 1 : this.nextId + 1
    const isIdle = thread.inFlight.size === 0
    thread.inFlight.set(id, read)
    read.placed = { thread, id }
    thread.outbox.push({ id, statements: read.statements, transaction: read.transaction, format: read.format, limitMs: read.limitMs })
    if (isIdle) this.flush(thread)
    else if (!this.isFlushScheduled) {
      this.isFlushScheduled = true
      setImmediate(() => {
        this.isFlushScheduled = false
        for (const t of this.threads) this.flush(t)
      })
    }
  }

  /** Posts the thread's outbox as one message. */
  private flush(thread: ReadThread): void {
    if (thread.outbox.length === 0 || thread.worker === undefined) return
    const reads = thread.outbox
    thread.outbox = []
    for (const { id } of reads) thread.inFlight.get(id)!.attempts++
    thread.worker.postMessage({ type: 'query', reads } satisfies ToReadWorker)
  }

  /** Posts a control message after the reads already dispatched to the thread. */
  private post(thread: ReadThread, message: ToReadWorker): void {
    this.flush(thread)
    thread.worker?.postMessage(message)
  }

  /** The running thread with the fewest reads in flight; ties go round robin. */
  private leastBusy(): ReadThread | undefined {
    let best: ReadThread | undefined
    const count = this.threads.length
    for (let i = 0; i < count; i++) {
      const thread = this.threads[(this.nextThread + i) % count]!
      if (thread.worker === undefined) continue
      if (best === undefined || thread.inFlight.size < best.inFlight.size) best = thread
    }
    this.nextThread = (this.nextThread + 1) % count
    return best
  }

  private spawn(thread: ReadThread): void {
    const url = workerEntry('read-worker', import.meta.url)
    const workerData: ReadWorkerData = {
      dbPath: this.options.dbPath,
      schema: this.options.schema.words,
      index: thread.index,
      control: this.control,
      states: this.states,
      queryTimeoutMs: this.options.queryTimeoutMs,
      cancels: this.cancels.cancels,
      running: this.cancels.running,
      connections: this.cancels.connections,
    }
    const worker = new Worker(url, { workerData, name: `tandem-read-${thread.index}`, resourceLimits: { maxOldGenerationSizeMb: readThreadHeapMb } })
    thread.worker = worker
    worker.on('message', (replies: ReadReply[]) => {
      for (const reply of replies) this.answer(thread, reply)
    })
    worker.on('error', (error) => this.options.logger.error({ err: error, thread: thread.index }, 'a read thread failed'))
    worker.once('exit', (code) => this.died(thread, worker, code))
  }

  private answer(thread: ReadThread, reply: ReadReply): void {
    const read = thread.inFlight.get(reply.id)
    if (read === undefined) return
    thread.inFlight.delete(reply.id)
    thread.served++
    thread.failuresInRow = 0
    if (reply.ok) {
      this.options.onAnswered?.(read.statements, reply.micros)
      this.settle(read, { results: reply.results })
    }
    else if (reply.error.code !== undefined) this.settle(read, { error: new TandemError(reply.error.code, reply.error.message) })
    else this.settle(read, { error: new Error(reply.error.message) })
  }

  private died(thread: ReadThread, worker: Worker, code: number): void {
    if (thread.worker !== worker) return
    thread.worker = undefined
    // A dead thread holds no connection: its SQLite handles went with it.
    Atomics.store(this.states, thread.index, connectionState.closed)
    this.cancels.forget(thread.index)
    const orphans = [...thread.inFlight.values()].filter((read) => !read.settled)
    thread.inFlight.clear()
    // Reads still in the outbox never reached the dead thread: their attempts were not counted.
    thread.outbox = []
    if (this.isClosed) {
      for (const read of orphans) this.settle(read, { error: new TandemError('SHUTTING_DOWN', 'the node is stopping') })
      return
    }
    this.options.logger.error({ thread: thread.index, code, reads: orphans.length }, 'a read thread stopped; starting another')
    thread.restarts++
    thread.failuresInRow++
    const delayMs = thread.failuresInRow <= 1 ? 0 : Math.min(restartDelayMsMax, 50 * 2 ** thread.failuresInRow)
    if (delayMs === 0) this.spawn(thread)
    else setTimeout(() => this.isClosed || this.spawn(thread), delayMs).unref()
    for (const read of orphans) {
      if (read.attempts >= this.options.attemptsMax) this.settle(read, { error: new TandemError('INTERNAL', `the read thread running this read stopped (exit code ${code})${read.attempts > 1 ? `, as did the ${read.attempts - 1} it was retried on` : ''}; the node logged why`) })
      else this.dispatch(read)
    }
  }

  /**
   * Closes every thread's connection and returns once all are closed, before a snapshot install
   * replaces the database file. Synchronous, because the install is: it blocks the main thread,
   * bounded by closeWaitMs per thread. A thread still busy then (a long query) is not ended:
   * ending a thread inside a SQLite call can abort the process. It keeps reading the old file,
   * whose inode stays valid while open, and closes it when its query ends; later reads open the
   * new file. Reads sent meanwhile answer NOT_READY until openConnections().
   */
  closeConnections(): void {
    Atomics.store(this.control, 0, 1)
    for (const thread of this.threads) {
      if (Atomics.load(this.states, thread.index) !== connectionState.closed) this.post(thread, { type: 'close' })
    }
    for (const thread of this.threads) {
      const deadline = performance.now() + this.options.closeWaitMs
      for (;;) {
        const state = Atomics.load(this.states, thread.index)
        if (state === connectionState.closed) break
        const remainingMs = deadline - performance.now()
        if (remainingMs <= 0 || thread.worker === undefined) {
          this.options.logger.warn({ thread: thread.index, waitedMs: this.options.closeWaitMs }, 'a read thread is still busy on the old database file; it closes it when its read ends')
          break
        }
        Atomics.wait(this.states, thread.index, state, remainingMs)
      }
    }
  }

  /** After a snapshot install: threads open the new file (at once, or at their next read). */
  openConnections(): void {
    Atomics.store(this.control, 0, 0)
    for (const thread of this.threads) this.post(thread, { type: 'open' })
  }

  stats(): { threads: number; queue_max: number; overloaded: number; cancelled: number; workers: { running: boolean; served: number; in_flight: number; restarts: number }[] } {
    return {
      threads: this.threads.length,
      queue_max: this.options.queueMax,
      overloaded: this.overloaded,
      cancelled: this.cancelled,
      workers: this.threads.map((t) => ({ running: t.worker !== undefined, served: t.served, in_flight: t.inFlight.size, restarts: t.restarts })),
    }
  }

  /** Makes one thread fail as a bug would, once it has answered what it was sent before (tests). */
  crashThread(index: number): void {
    const thread = this.threads[index]
    if (thread !== undefined) this.post(thread, { type: 'crash' })
  }

  /** Refuses new reads, and drops or stops every read in flight (SHUTTING_DOWN): the node is stopping. */
  stopReads(): void {
    this.isClosed = true
    for (const thread of this.threads) {
      for (const [id, read] of thread.inFlight) {
        this.cancels.mark(id)
        this.settle(read, { error: new TandemError('SHUTTING_DOWN', 'the node is stopping') })
      }
      this.cancels.stopThread(thread.index)
    }
  }

  /** stopReads(), then every thread closes its connection and exits (left to the process exit after stopWaitMs if still busy). */
  async close(): Promise<void> {
    this.stopReads()
    for (const thread of this.threads) this.flush(thread)
    await Promise.all(this.threads.flatMap((t) => (t.worker === undefined ? [] : [stopWorker(t.worker)])))
  }
}

const stopWaitMs = 2000

function cancelledError(): TandemError {
  return new TandemError('CANCELLED', 'the read was stopped: its client went away')
}

function stopWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    // Not terminate(): ending a thread inside a SQLite call can abort the process.
    const timer = setTimeout(() => {
      worker.unref()
      resolve()
    }, stopWaitMs)
    worker.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    worker.postMessage({ type: 'stop' } satisfies ToReadWorker)
  })
}
