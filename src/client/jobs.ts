/**
 * `client.jobs`: submit work that replicas run (docs/jobs.md), wait for it, watch it, list,
 * cancel and retry it. Every request goes to the master, by the write path's rules (see
 * master-call.ts): `POST /jobs` is sent again after it may have reached the master only when it
 * carries an idempotency key; the GETs are retried freely. POSTs carry `redirect`, as writes
 * do: a node that is no longer the master answers 301 instead of relaying them.
 *
 * ```ts
 * const job = await client.jobs.submit('thumbnail', { id: 7 }, { attempts: 5, timeoutMs: 10_000 })
 * job.on('progress', ({ index, value }) => console.log(index, value))
 * const done = await job.wait()
 * const sizes = await client.jobs.map('size', [{ id: 7 }, { id: 8 }])   // results in input order
 * ```
 */
import { TandemClientError } from './client-errors.ts'
import { JobHandle, type JobCalls, type WaitOptions } from './job-handle.ts'
import { decodeJob, decodeJobSummary, type Backoff, type Job, type JobState, type JobSummary } from './job.ts'
import { stringifyJson } from './json-codec.ts'
import { callMaster, type MasterCall } from './master-call.ts'
import { badResponse } from './results.ts'
import { Schedules } from './schedules.ts'
import type { Session } from './session.ts'
import type { Connection } from './writer.ts'

/** How a job runs; the master's defaults apply to what is left out. */
export interface JobOptions {
  /** Runs of each task before it is dead. Default 3. */
  attempts?: number
  /** The wait before a failed task runs again. Default exponential from 1 000 ms, no jitter, at most an hour. */
  backoff?: Partial<Backoff>
  /** One run of a task is aborted after this long. Default 300 000. */
  timeoutMs?: number
  /** Higher runs first. Default 0. */
  priority?: number
  /** A group key (1 to 200 characters): per-group limits apply, and groups share slots fairly. */
  group?: string
  /** The job's tasks start no sooner than this long after it is submitted. Default 0. */
  delayMs?: number
  /**
   * Makes the submission safe to repeat: the master answers a repeat with the first job (and
   * `replayed: true`), so the client also sends it again after a lost answer. 1 to 200 characters.
   */
  idempotencyKey?: string
  /**
   * At most one live job per `key` (1 to 200 characters). `drop` (the default): a submission
   * while the key's job is unfinished — or, with `windowMs`, within that long after it was
   * created — answers that job (`deduplicated: true`) and stores nothing. `debounce` (one input,
   * with `delayMs`): a submission while the key's job still waits for its delay replaces its
   * input and starts the delay again (`debounced: true`).
   */
  dedupe?: { key: string; mode?: 'drop' | 'debounce'; windowMs?: number }
  /**
   * Jobs (ids) this one runs after: it waits (state `waiting`) until each has ended, and its
   * handler gets their results as `ctx.after` ({id: results in input order}). At most 100.
   */
  after?: readonly string[]
  /** When one of `after` ends failed or cancelled: `fail` this job too (the default), or `continue` (run it anyway). */
  onFailure?: 'fail' | 'continue'
}

export interface JobLimit {
  handler?: string
  /** A group key, or `*`: each group that has no limit of its own. */
  group?: string
  concurrency?: number
  rate?: { max: number; periodMs: number }
}

export interface SubmitOptions extends JobOptions {
  signal?: AbortSignal
}

export interface MapOptions extends SubmitOptions {
  /** Give up waiting (TimeoutError) after this long; the job runs on. Default: wait as long as it runs. */
  waitTimeoutMs?: number
}

export interface ListFilter {
  state?: JobState
  name?: string
  /** At most this many, newest first. The master's default is 100. */
  limit?: number
  /** Only jobs older than this one: pass the last id of a page to get the next. */
  before?: string
}

export interface CallOptions {
  signal?: AbortSignal
  /** This call's deadline, retries included (default: the client's timeoutMs). */
  timeoutMs?: number
}

/** The client's shared core, as the jobs API uses it. */
export interface JobsConnection extends Connection {
  /** Runs a call, refusing it once the client is closing. */
  run<T>(call: () => Promise<T>): Promise<T>
}

/** The handles with an open event stream, per connection: shared by the clients `withSession()` made. */
const openStreams = new WeakMap<Connection, Set<JobHandle>>()

export class Jobs {
  private readonly connection: JobsConnection
  private readonly session: Session
  private readonly calls: JobCalls
  /** Repeatable jobs: one per occurrence of a cron expression or an interval (docs/jobs.md). */
  readonly schedules: Schedules

  /** Use `client.jobs`. */
  constructor(connection: JobsConnection, session: Session) {
    this.connection = connection
    this.session = session
    this.schedules = new Schedules(connection)
    if (!openStreams.has(connection)) openStreams.set(connection, new Set())
    const streams = openStreams.get(connection)!
    this.calls = {
      connection,
      get: (id, options) => this.get(id, options),
      cancel: (id, options) => this.cancel(id, options),
      streamOpened: (handle) => streams.add(handle),
      streamClosed: (handle) => streams.delete(handle),
    }
  }

  /** Submits a job of one task; `input` is any JSON value (an array is one input). */
  async submit(name: string, input: unknown, options: SubmitOptions = {}): Promise<JobHandle> {
    return this.post(name, { input: input ?? null }, options)
  }

  /** Submits a job of one task per input (1 to 100 000 inputs). */
  async submitMany(name: string, inputs: readonly unknown[], options: SubmitOptions = {}): Promise<JobHandle> {
    if (!Array.isArray(inputs)) throw new TandemClientError('BAD_REQUEST', 'submitMany() takes an array of inputs')
    return this.post(name, { inputs: Array.from(inputs, (input: unknown) => input ?? null) }, options)
  }

  /**
   * Runs `name` on every input and resolves to the results in input order; rejects with
   * JobFailedError when a task runs out of attempts or the job is cancelled. When no connected
   * replica has the handler, it says so with a process warning (TANDEM_NO_HANDLER) and waits.
   */
  async map(name: string, inputs: readonly unknown[], options: MapOptions = {}): Promise<unknown[]> {
    if (inputs.length === 0) return []
    const { waitTimeoutMs, ...submitOptions } = options
    const handle = await this.submitMany(name, inputs, submitOptions)
    // Waiting on tasks no replica can run would look like a hang: say so once, and wait on.
    if (handle.warning !== undefined) process.emitWarning(`job ${handle.id}: ${handle.warning}`, { code: 'TANDEM_NO_HANDLER' })
    const wait: WaitOptions = {}
    if (waitTimeoutMs !== undefined) wait.timeoutMs = waitTimeoutMs
    if (options.signal !== undefined) wait.signal = options.signal
    const job = await handle.wait(wait)
    return job.results
  }

  /** A handle on a job submitted elsewhere (its id), to wait for, watch or cancel it. */
  handle(id: string): JobHandle {
    return new JobHandle(this.calls, checkedId(id), undefined)
  }

  /** The job as it stands; JOB_NOT_FOUND when there is none. */
  async get(id: string, options: CallOptions = {}): Promise<Job> {
    const answer = await this.call({ method: 'GET', path: `/jobs/${encodeURIComponent(checkedId(id))}`, what: `the read of job ${id}` }, options)
    return decodeJob(answer.body, answer.node)
  }

  /** Jobs newest first, filtered. */
  async list(filter: ListFilter = {}, options: CallOptions = {}): Promise<JobSummary[]> {
    const query = new URLSearchParams()
    if (filter.state !== undefined) query.set('state', filter.state)
    if (filter.name !== undefined) query.set('name', filter.name)
    if (filter.limit !== undefined) query.set('limit', String(filter.limit))
    if (filter.before !== undefined) query.set('before', filter.before)
    const search = query.toString()
    const answer = await this.call({ method: 'GET', path: `/jobs${search === '' ? '' : `?${search}`}`, what: 'the job list' }, options)
    const jobs = (answer.body as { jobs?: unknown } | undefined)?.jobs
    if (!Array.isArray(jobs)) throw badResponse(answer.node, 'a job list without "jobs"')
    return jobs.map((job) => decodeJobSummary(job, answer.node))
  }

  /** Cancels the job's queued and running tasks; JOB_FINISHED when it had finished. */
  async cancel(id: string, options: CallOptions = {}): Promise<Job> {
    const answer = await this.call({ method: 'POST', path: `/jobs/${encodeURIComponent(checkedId(id))}/cancel?redirect`, what: `the cancellation of job ${id}` }, options)
    return decodeJob(answer.body, answer.node)
  }

  /** Queues the job's dead and cancelled tasks again with fresh attempts; JOB_NOT_RETRYABLE when there are none. */
  async retry(id: string, options: CallOptions = {}): Promise<Job> {
    const answer = await this.call({ method: 'POST', path: `/jobs/${encodeURIComponent(checkedId(id))}/retry?redirect`, what: `the retry of job ${id}` }, options)
    return decodeJob(answer.body, answer.node)
  }

  /**
   * Sets a limit, global across replicas, on one handler (`{ handler }`), one group (`{ group }`)
   * or each group without its own (`{ group: '*' }`): tasks running at once, and/or tasks started
   * per period. Replaces the scope's limit.
   */
  async setLimit(limit: JobLimit, options: CallOptions = {}): Promise<void> {
    const body = {
      ...(limit.handler === undefined ? {} : { handler: limit.handler }),
      ...(limit.group === undefined ? {} : { group: limit.group }),
      ...(limit.concurrency === undefined ? {} : { concurrency: limit.concurrency }),
      ...(limit.rate === undefined ? {} : { rate: { max: limit.rate.max, period_ms: limit.rate.periodMs } }),
    }
    await this.call({ method: 'POST', path: '/jobs/limits?redirect', body: stringifyJson(body), isRepeatable: true, what: 'setting a job limit' }, options)
  }

  /** Every limit: `scope` is `handler:NAME`, `group:KEY` or `group:*`. */
  async limits(options: CallOptions = {}): Promise<{ scope: string; concurrency: number | null; rate: { max: number; periodMs: number } | null }[]> {
    const answer = await this.call({ method: 'GET', path: '/jobs/limits', what: 'the job limits' }, options)
    const limits = (answer.body as { limits?: unknown } | undefined)?.limits
    if (!Array.isArray(limits)) throw badResponse(answer.node, 'a limit list without "limits"')
    return (limits as { scope: string; concurrency: number | null; rate: { max: number; period_ms: number } | null }[]).map((l) => ({ scope: l.scope, concurrency: l.concurrency, rate: l.rate === null ? null : { max: l.rate.max, periodMs: l.rate.period_ms } }))
  }

  /** Removes the limit on `scope` (as `limits()` names it); LIMIT_NOT_FOUND when there was none. */
  async deleteLimit(scope: string, options: CallOptions = {}): Promise<void> {
    await this.call({ method: 'DELETE', path: `/jobs/limits/${encodeURIComponent(scope)}?redirect`, what: `the deletion of the limit on ${scope}` }, options)
  }

  /** Closes the event streams of every handle on this connection. */
  closeStreams(): void {
    for (const handle of openStreams.get(this.connection) ?? []) handle.close()
  }

  private async post(name: string, inputs: { input: unknown } | { inputs: unknown[] }, options: SubmitOptions): Promise<JobHandle> {
    if (typeof name !== 'string' || name === '') throw new TandemClientError('BAD_REQUEST', 'a job needs the name of a handler')
    const key = options.idempotencyKey
    const call: MasterCall = {
      method: 'POST',
      path: '/jobs?redirect',
      body: stringifyJson(jobBody(name, inputs, options)),
      isRepeatable: key !== undefined,
      timeoutMs: this.connection.settings.timeoutMs,
      signal: options.signal,
      what: `the submission of job '${name}'`,
    }
    if (key !== undefined) call.idempotencyKey = key
    const answer = await this.connection.run(() => callMaster(this.connection, call))
    const body = answer.body as { id?: unknown; lsn?: unknown; replayed?: unknown; deduplicated?: unknown; debounced?: unknown; warning?: unknown } | undefined
    if (typeof body?.id !== 'string') throw badResponse(answer.node, `a job submission answered without an id: ${JSON.stringify(answer.body) ?? 'nothing'}`)
    const lsn = typeof body.lsn === 'number' ? body.lsn : 0
    this.session.observe(lsn)
    const deduplicated = body.deduplicated === true
    const debounced = body.debounced === true
    const submitted = {
      lsn,
      replayed: body.replayed === true || (answer.status === 200 && !deduplicated && !debounced),
      deduplicated,
      debounced,
      ...(typeof body.warning === 'string' ? { warning: body.warning } : {}),
    }
    return new JobHandle(this.calls, body.id, submitted)
  }

  private call(call: Omit<MasterCall, 'timeoutMs' | 'signal'>, options: CallOptions) {
    return this.connection.run(() => callMaster(this.connection, { ...call, timeoutMs: options.timeoutMs ?? this.connection.settings.timeoutMs, signal: options.signal }))
  }
}

/** The snake_case body of `POST /jobs`; only what the caller set, so the master's defaults apply. */
function jobBody(name: string, inputs: { input: unknown } | { inputs: unknown[] }, options: JobOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { name, ...inputs }
  if (options.attempts !== undefined) body['attempts'] = options.attempts
  if (options.backoff !== undefined) {
    const { type, delayMs, jitter, maxMs } = options.backoff
    const backoff: Record<string, unknown> = {}
    if (type !== undefined) backoff['type'] = type
    if (delayMs !== undefined) backoff['delay_ms'] = delayMs
    if (jitter !== undefined) backoff['jitter'] = jitter
    if (maxMs !== undefined) backoff['max_ms'] = maxMs
    body['backoff'] = backoff
  }
  if (options.timeoutMs !== undefined) body['timeout_ms'] = options.timeoutMs
  if (options.priority !== undefined) body['priority'] = options.priority
  if (options.group !== undefined) body['group'] = options.group
  if (options.delayMs !== undefined) body['delay_ms'] = options.delayMs
  if (options.idempotencyKey !== undefined) body['idempotency_key'] = options.idempotencyKey
  if (options.after !== undefined) body['after'] = [...options.after]
  if (options.onFailure !== undefined) body['on_failure'] = options.onFailure
  if (options.dedupe !== undefined) {
    const { key, mode, windowMs } = options.dedupe
    body['dedupe'] = { key, ...(mode === undefined ? {} : { mode }), ...(windowMs === undefined ? {} : { window_ms: windowMs }) }
  }
  return body
}

function checkedId(id: string): string {
  if (typeof id !== 'string' || id === '') throw new TandemClientError('BAD_REQUEST', 'a job id is a non-empty string, as submit() returned it')
  return id
}
