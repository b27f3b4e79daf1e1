/**
 * A submitted job: wait for it, look at it, cancel it, and watch it. Watching is lazy: the
 * first `progress`, `task` or `job` listener opens `GET /jobs/:id/events` on the master, and
 * the stream closes when the job finishes or `close()` is called.
 *
 * The stream is best effort, as progress is (the master keeps it in memory only): a stream that
 * breaks is opened again after a backoff, on whichever node is the master then, and events sent
 * while it was down are not replayed. `wait()` does not depend on it: it long-polls
 * `GET /jobs/:id/wait`, so a finished job is never missed.
 */
import { EventEmitter } from 'node:events'
import { backoffMs, sleep } from '../shared/wait.ts'
import { AbortedError, TandemClientError, TimeoutError, errorFromResponse } from './client-errors.ts'
import { EventStreamParser, type ServerSentEvent } from './event-stream.ts'
import { JobFailedError, decodeJob, decodeTaskEvent, finishedJobStates, type Job, type JobEvent, type JobState, type ProgressEvent, type TaskEvent } from './job.ts'
import { callMaster } from './master-call.ts'
import { parseJson } from './json-codec.ts'
import type { Connection } from './writer.ts'

export interface WaitOptions {
  /** Give up (TimeoutError) when the job has not finished this long after the call. Default: wait as long as it runs. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface JobHandleEvents {
  progress: [ProgressEvent]
  task: [TaskEvent]
  job: [JobEvent]
  /** The event stream failed for good (emitted only when someone listens). */
  error: [Error]
}

/** What a handle needs of the jobs API. Internal. */
export interface JobCalls {
  readonly connection: Connection
  get(id: string, options?: { signal?: AbortSignal }): Promise<Job>
  cancel(id: string, options?: { signal?: AbortSignal }): Promise<Job>
  /** Tracks handles with an open stream, so closing the client closes them. */
  streamOpened(handle: JobHandle): void
  streamClosed(handle: JobHandle): void
}

/** Each long poll asks the master to hold the request at most this long. */
const waitPollMsMax = 30_000
/** The least time between two polls. */
const pollRestMs = 100
/** A stream quiet this long is opened again (the master may be gone without a word). */
const streamIdleMs = 60_000
const streamEvents = new Set<string | symbol>(['progress', 'task', 'job'])

export class JobHandle extends EventEmitter<JobHandleEvents> {
  readonly id: string
  /** The LSN that holds the job; undefined for a handle made from an id. */
  readonly lsn: number | undefined
  /** True when the master answered from an earlier submission with the same idempotency key. */
  readonly replayed: boolean
  /** True when the job's dedupe key was held by this live job: the submission stored nothing. */
  readonly deduplicated: boolean
  /** True when the submission replaced this waiting job's input (a debounce). */
  readonly debounced: boolean
  /** Set when no connected replica had the job's handler when it was submitted: its tasks wait for one. */
  readonly warning: string | undefined
  private readonly calls: JobCalls
  /** Aborts the event stream; set while it is open. */
  private stream: AbortController | undefined
  /** Set once the stream has ended for good: the job finished, or close() was called. */
  private isClosed = false

  /** Use `client.jobs.submit()` or `client.jobs.handle(id)`. */
  constructor(calls: JobCalls, id: string, submitted: { lsn: number; replayed: boolean; deduplicated?: boolean; debounced?: boolean; warning?: string } | undefined) {
    super()
    this.calls = calls
    this.id = id
    this.lsn = submitted?.lsn
    this.replayed = submitted?.replayed ?? false
    this.deduplicated = submitted?.deduplicated ?? false
    this.debounced = submitted?.debounced ?? false
    this.warning = submitted?.warning
    // 'newListener' is EventEmitter's own event, outside JobHandleEvents.
    ;(this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (streamEvents.has(event)) this.openStream()
    })
  }

  /** The job as it stands. */
  status(options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.calls.get(this.id, options)
  }

  /** Cancels the job's queued and running tasks; fails with JOB_FINISHED when it had finished. */
  cancel(options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.calls.cancel(this.id, options)
  }

  /**
   * Waits for the job to finish: resolves to it when `completed`, throws JobFailedError when it
   * ended `failed` or `cancelled`, TimeoutError when `timeoutMs` passes first.
   */
  async wait(options: WaitOptions = {}): Promise<Job> {
    const { timeoutMs } = options
    if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0)) {
      throw new TandemClientError('BAD_REQUEST', `timeoutMs must be a positive integer, got ${timeoutMs}`)
    }
    const { settings } = this.calls.connection
    const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs
    let last: Job | undefined
    for (;;) {
      const remainingMs = deadline - performance.now()
      if (remainingMs <= 0) throw new TimeoutError(`job ${this.id} did not finish within ${timeoutMs} ms${last === undefined ? '' : ` (it is ${last.state})`}`)
      const pollMs = Math.max(1, Math.min(waitPollMsMax, Math.ceil(remainingMs)))
      const started = performance.now()
      const answer = await callMaster(this.calls.connection, {
        method: 'GET',
        path: `/jobs/${encodeURIComponent(this.id)}/wait?timeout=${pollMs}ms`,
        // The master holds the request up to pollMs; the client's timeout covers the rest.
        timeoutMs: pollMs + settings.timeoutMs,
        signal: options.signal,
        what: `the wait for job ${this.id}`,
      })
      last = decodeJob(answer.body, answer.node)
      if (last.state === 'completed') return last
      if (finishedJobStates.has(last.state)) throw new JobFailedError(last, answer.node)
      // An unfinished job answered at once (the master held the poll no time): do not spin.
      const heldMs = performance.now() - started
      if (heldMs < pollRestMs && pollMs > pollRestMs) {
        await sleep(Math.min(pollRestMs - heldMs, remainingMs), options.signal).catch((error: unknown) => {
          throw new AbortedError(`the wait for job ${this.id} was aborted`, { cause: error })
        })
      }
    }
  }

  /** Closes the event stream (if open) and opens no other. Listeners stay; nothing more is emitted. */
  close(): void {
    this.isClosed = true
    this.stream?.abort()
  }

  private openStream(): void {
    if (this.stream !== undefined || this.isClosed) return
    const controller = new AbortController()
    this.stream = controller
    this.calls.streamOpened(this)
    this.follow(controller.signal)
      .catch((error: unknown) => {
        if (controller.signal.aborted) return
        // EventEmitter throws an 'error' nobody listens to: report it only to a listener.
        if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)))
      })
      .finally(() => {
        this.stream = undefined
        this.isClosed = true
        this.calls.streamClosed(this)
      })
  }

  /** Reads the stream, opening it again when it breaks, until the job finishes. */
  private async follow(signal: AbortSignal): Promise<void> {
    const { connection } = this.calls
    // Failed or empty connections in a row; a connection that delivered events or sat idle
    // proves the master serves the stream, and starts the count again.
    let failures = 0
    let lastError: unknown
    for (let opened = 0; !signal.aborted; opened++) {
      if (failures >= connection.settings.attemptsMax) {
        throw new TandemClientError('UNAVAILABLE', `the event stream of job ${this.id} failed ${failures} times in a row`, { cause: lastError })
      }
      if (opened > 0) {
        await sleep(backoffMs(failures, 100, 5_000), signal)
        // Events sent while the stream was down are lost; the job's end must not be.
        const job = await this.calls.get(this.id, { signal })
        if (finishedJobStates.has(job.state)) {
          this.emitSafely('job', { state: job.state })
          return
        }
      }
      try {
        const outcome = await this.readStream(signal)
        if (outcome === 'finished') return
        failures = outcome === 'empty' ? failures + 1 : 0
      } catch (error) {
        if (signal.aborted) return
        // A job that does not exist will not start to.
        if (error instanceof TandemClientError && error.status !== undefined && error.status < 500 && error.code !== 'NOT_MASTER') throw error
        lastError = error
        failures++
      }
    }
  }

  /**
   * One connection to the master's event stream. 'finished': the job's last event came;
   * 'read': events came, then the stream ended; 'idle': nothing came for streamIdleMs;
   * 'empty': it ended before any event.
   */
  private async readStream(signal: AbortSignal): Promise<'finished' | 'read' | 'idle' | 'empty'> {
    const { topology, settings, transport } = this.calls.connection
    const node = await topology.master(signal)
    const response = await transport.stream({
      node,
      path: `/jobs/${encodeURIComponent(this.id)}/events`,
      headers: { accept: 'text/event-stream' },
      signal,
      headersTimeoutMs: settings.timeoutMs,
      bodyIdleMs: streamIdleMs,
    }).catch((error: unknown) => {
      if (!signal.aborted) topology.reportFailure(node)
      throw error
    })
    if (response.statusCode !== 200) throw this.streamRefused(node, response.statusCode, response.headers, await response.body.text())
    topology.reportSuccess(node)
    const parser = new EventStreamParser()
    const decoder = new TextDecoder()
    let outcome: 'read' | 'empty' = 'empty'
    try {
      for await (const chunk of response.body) {
        for (const event of parser.push(decoder.decode(chunk as Buffer, { stream: true }))) {
          outcome = 'read'
          if (this.dispatch(event)) return 'finished'
        }
      }
    } catch (error) {
      if ((error as { code?: unknown }).code === 'UND_ERR_BODY_TIMEOUT') return 'idle'
      throw error
    }
    return outcome
  }

  /** The error a non-200 answer to the stream request amounts to; a redirect updates the topology. */
  private streamRefused(node: string, status: number, headers: Record<string, string | string[] | undefined>, text: string): TandemClientError {
    let body: unknown
    try {
      body = parseJson(text)
    } catch {
      body = undefined
    }
    const error = errorFromResponse(status, body, node)
    if (status === 421 || (status >= 300 && status < 400)) {
      const hint = (body as { master?: unknown } | undefined)?.master
      const location = headers['location']
      this.calls.connection.topology.redirectMaster(typeof hint === 'string' ? hint : typeof location === 'string' ? new URL(location, node).origin : undefined)
      return new TandemClientError('NOT_MASTER', error.message, { status, node })
    }
    return error
  }

  /** Emits one server event; true when it says the job finished. */
  private dispatch(event: ServerSentEvent): boolean {
    let data: Record<string, unknown>
    try {
      const parsed = parseJson(event.data)
      if (typeof parsed !== 'object' || parsed === null) return false
      data = parsed as Record<string, unknown>
    } catch {
      return false
    }
    if (data['job'] !== undefined && data['job'] !== this.id) return false
    if (event.event === 'progress') this.emitSafely('progress', { index: Number(data['index']), value: data['value'] ?? null })
    else if (event.event === 'task') this.emitSafely('task', decodeTaskEvent(data))
    else if (event.event === 'job') {
      const state = data['state'] as JobState
      this.emitSafely('job', { state })
      return finishedJobStates.has(state)
    }
    return false
  }

  /**
   * Emits an event; a listener that throws is the caller's bug and surfaces as an uncaught
   * exception, as it would from any emitter, instead of passing for a broken stream.
   */
  private emitSafely<K extends 'progress' | 'task' | 'job'>(event: K, value: JobHandleEvents[K][0]): void {
    try {
      ;(this as EventEmitter).emit(event, value)
    } catch (error) {
      process.nextTick(() => {
        throw error
      })
    }
  }
}
