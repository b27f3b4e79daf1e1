/**
 * A job as the client sees it: docs/jobs.md's JSON with camelCase names, decoded from the
 * master's answers, and the error a job that did not complete amounts to.
 */
import { TandemClientError, type ClientErrorCode } from './client-errors.ts'
import { badResponse } from './results.ts'

/** `queued`: no task started; `failed`: every task finished, at least one `dead`. */
/** waiting: for the jobs it runs after (`after`). */
export type JobState = 'waiting' | 'queued' | 'running' | 'completed' | 'failed' | 'cancelled'
/** `running`: leased to a replica; `failed`: waiting to retry after its backoff; `dead`: no attempts left. */
export type TaskState = 'queued' | 'running' | 'done' | 'failed' | 'dead' | 'cancelled'

export const finishedJobStates: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled'])

export interface Backoff {
  type: 'exponential' | 'fixed'
  delayMs: number
  /** 0..1: the share of each delay that is random. */
  jitter: number
  maxMs: number
}

export interface JobOptionsView {
  attempts: number
  backoff: Backoff
  timeoutMs: number
  priority: number
  /** The job's group key, when it has one. */
  group?: string
}

export interface TaskCounts {
  total: number
  queued: number
  running: number
  done: number
  failed: number
  dead: number
  cancelled: number
}

export interface Task {
  index: number
  state: TaskState
  attempts: number
  /** The replica running it, or that ran it last. */
  worker: string | null
  /** The handler's last `ctx.progress(value)`. */
  progress: unknown
  error: string | null
}

/** A dead task: no attempts left. */
export interface TaskError {
  index: number
  error: string
  attempts: number
}

/** A job as `GET /jobs?…` lists it. */
export interface JobSummary {
  id: string
  name: string
  state: JobState
  /** ISO 8601. */
  createdAt: string
  finishedAt: string | null
  /** The LSN that holds the job. */
  lsn: number
  /** How many tasks it has (one per input). */
  taskCount: number
}

/** A job as `GET /jobs/:id` answers it. */
export interface Job extends JobSummary {
  options: JobOptionsView
  counts: TaskCounts
  /** The mean of the tasks' numeric progress (done tasks count 1), 0..1. */
  progress: number
  /** `results[i]` is task i's result, null until it is done. */
  results: unknown[]
  /** The dead tasks: no attempts left. */
  errors: TaskError[]
  tasks: Task[]
}

/** `event: task` of the job's event stream. */
export interface TaskEvent {
  index: number
  state: TaskState
  attempts: number
  worker: string | null
  error: string | null
}

/** `event: progress`: a handler's `ctx.progress(value)`. */
export interface ProgressEvent {
  index: number
  value: unknown
}

/** `event: job`: the job changed state; the last one says it finished. */
export interface JobEvent {
  state: JobState
}

const jobFailedCode: ClientErrorCode = 'JOB_FAILED'

/**
 * The job ended `failed` (some task ran out of attempts) or `cancelled`. `job` is the job as it
 * finished; `errors` its dead tasks' last errors. `client.jobs.retry(job.id)` queues the dead
 * and cancelled tasks again.
 */
export class JobFailedError extends TandemClientError {
  readonly job: Job
  readonly errors: TaskError[]

  constructor(job: Job, node?: string) {
    const first = job.errors[0]
    const why =
      job.state === 'cancelled'
        ? 'was cancelled'
        : `failed: ${job.errors.length} of ${job.counts.total} tasks ran out of attempts${first === undefined ? '' : ` (task ${first.index}: ${first.error})`}`
    super(jobFailedCode, `job ${job.id} (${job.name}) ${why}`, node === undefined ? {} : { node })
    this.name = 'JobFailedError'
    this.job = job
    this.errors = job.errors
  }

  override get isRetryable(): boolean {
    return false
  }
}

type Json = Record<string, unknown>

export function decodeJob(value: unknown, node: string): Job {
  const raw = objectOf(value, node, 'a job')
  const tasks = arrayOf(raw['tasks']).map(decodeTask)
  const counts = objectOr(raw['counts'])
  return {
    ...decodeJobSummary({ ...raw, tasks: tasks.length }, node),
    options: decodeOptions(objectOr(raw['options'])),
    counts: {
      total: num(counts['total']),
      queued: num(counts['queued']),
      running: num(counts['running']),
      done: num(counts['done']),
      failed: num(counts['failed']),
      dead: num(counts['dead']),
      cancelled: num(counts['cancelled']),
    },
    progress: num(raw['progress']),
    results: Array.isArray(raw['results']) ? (raw['results'] as unknown[]) : [],
    errors: arrayOf(raw['errors']).map((e) => ({ index: num(e['index']), error: text(e['error']) ?? '', attempts: num(e['attempts']) })),
    tasks,
  }
}

export function decodeJobSummary(value: unknown, node: string): JobSummary {
  const raw = objectOf(value, node, 'a job')
  const id = raw['id']
  const state = raw['state']
  if (typeof id !== 'string' || typeof state !== 'string') throw badResponse(node, `a job without an id and a state: ${JSON.stringify(value)}`)
  return {
    id,
    name: text(raw['name']) ?? '',
    state: state as JobState,
    createdAt: text(raw['created_at']) ?? '',
    finishedAt: text(raw['finished_at']),
    lsn: num(raw['lsn']),
    taskCount: num(raw['tasks']),
  }
}

export function decodeTaskEvent(raw: Json): TaskEvent {
  return { index: num(raw['index']), state: raw['state'] as TaskState, attempts: num(raw['attempts']), worker: text(raw['worker']), error: text(raw['error']) }
}

function decodeTask(raw: Json): Task {
  return { index: num(raw['index']), state: raw['state'] as TaskState, attempts: num(raw['attempts']), worker: text(raw['worker']), progress: raw['progress'] ?? null, error: text(raw['error']) }
}

// docs/jobs.md spells options in snake_case; a master that stores them as it parsed them
// answers camelCase. Both read the same.
function decodeOptions(raw: Json): JobOptionsView {
  const backoff = objectOr(raw['backoff'])
  return {
    attempts: num(raw['attempts']),
    backoff: {
      type: backoff['type'] as Backoff['type'],
      delayMs: num(backoff['delay_ms'] ?? backoff['delayMs']),
      jitter: num(backoff['jitter']),
      maxMs: num(backoff['max_ms'] ?? backoff['maxMs']),
    },
    timeoutMs: num(raw['timeout_ms'] ?? raw['timeoutMs']),
    priority: num(raw['priority']),
    ...(typeof raw['group'] === 'string' ? { group: raw['group'] } : {}),
  }
}

function objectOr(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {}
}

function objectOf(value: unknown, node: string, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badResponse(node, `expected ${what}, got ${JSON.stringify(value) ?? 'nothing'}`)
  return value as Json
}

function arrayOf(value: unknown): Json[] {
  return Array.isArray(value) ? (value as unknown[]).filter((v): v is Json => typeof v === 'object' && v !== null) : []
}

function num(value: unknown): number {
  if (typeof value === 'bigint') return Number(value)
  return typeof value === 'number' ? value : 0
}

function text(value: unknown): string | null {
  if (value === null || value === undefined) return null
  return typeof value === 'string' ? value : JSON.stringify(value)
}
