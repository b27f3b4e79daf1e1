/**
 * The pipeline's side of the long-write thread (long-write-worker.ts): started on the first long
 * write, kept for the next ones, one request at a time.
 */
import { Worker } from 'node:worker_threads'
import { TandemError } from '../shared/errors.ts'
import { workerEntry } from '../shared/worker-entry.ts'
import type { Logger } from '../shared/logger.ts'
import { StatementLimits } from '../storage/index.ts'
import type { FromLongWriter, LongWriteOutcome, LongWriteWorkerData, ToLongWriter } from './long-write-protocol.ts'
import type { WriteRequest } from './write-batch.ts'

/** How long stop() waits for a thread still inside SQLite before leaving it to the process exit. */
const stopWaitMs = 2000

export class LongWriteThread {
  private readonly worker: Worker
  private readonly ready: Promise<number | undefined>
  private running: { resolve: (outcome: LongWriteOutcome) => void; reject: (error: Error) => void } | undefined
  private exited = false
  private cancelled = false
  private watchedId: number | undefined

  constructor(data: LongWriteWorkerData, logger: Logger) {
    this.worker = new Worker(workerEntry('long-write-worker', import.meta.url), { workerData: data, name: 'tandem-long-write' })
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (message: FromLongWriter) => {
        if (message.type === 'ready') {
          this.watchedId = message.watchedId
          resolve(message.watchedId)
          return
        }
        const running = this.running
        this.running = undefined
        running?.resolve(message.outcome)
      })
      this.worker.on('error', (error) => {
        logger.error({ err: error }, 'the long-write thread failed')
        reject(error)
      })
      this.worker.once('exit', (code) => {
        this.exited = true
        const error = new TandemError('WRITE_FAILED', `the long-write thread ended (exit code ${code}): nothing of the request was applied`)
        reject(error)
        this.running?.reject(error)
        this.running = undefined
      })
    })
    // A failed start is reported to the write that waits for it.
    this.ready.catch(() => {})
  }

  get isAlive(): boolean {
    return !this.exited
  }

  /** Runs one request as entry `lsn` of `epoch`; the pipeline runs nothing else meanwhile. */
  async run(request: WriteRequest, stopped: Map<number, string> | undefined, lsn: number, epoch: number, previousHash: Uint8Array | null): Promise<LongWriteOutcome> {
    await this.ready
    if (this.cancelled) throw new TandemError('SHUTTING_DOWN', 'the master is stopping: nothing of the request was applied')
    if (this.exited) throw new TandemError('WRITE_FAILED', 'the long-write thread ended: nothing of the request was applied')
    return new Promise((resolve, reject) => {
      this.running = { resolve, reject }
      this.worker.postMessage({ type: 'run', request, stopped, lsn, epoch, previousHash } satisfies ToLongWriter)
    })
  }

  /**
   * For good: the request the thread runs, or is about to, is answered SHUTTING_DOWN, nothing of
   * it applied (a cancel stops the connection's running statement, or its next one).
   */
  cancel(): void {
    this.cancelled = true
    if (this.watchedId !== undefined) StatementLimits.forThisThread()?.cancel(this.watchedId)
  }

  /** cancel(), then the thread closes its connection and exits. Not terminate(): ending a thread inside a SQLite call can abort the process. */
  stop(): Promise<void> {
    this.cancel()
    if (this.exited) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.worker.unref()
        resolve()
      }, stopWaitMs)
      this.worker.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      this.worker.postMessage({ type: 'stop' } satisfies ToLongWriter)
    })
  }
}
