/**
 * Jobs as the API shows them (docs/jobs.md): built from the tables, with the progress that
 * lives only in the scheduler's memory laid over them.
 */
import type { JobState, TaskState } from './job-schema.ts'
import type { JobOptions } from './job-spec.ts'
import type { JobReads, JobRow, TaskRow } from './job-store.ts'

/** The API's name for each task state: a leased task is running. */
const shownState = (state: TaskState) => (state === 'leased' ? 'running' : state)

export interface JobSummary {
  id: string
  name: string
  state: JobState
  created_at: string
  finished_at: string | null
  lsn: number
  tasks: number
}

export function summaryOf(row: JobRow): JobSummary {
  return { id: row.id, name: row.name, state: row.state, created_at: iso(row.created_at), finished_at: row.finished_at === null ? null : iso(row.finished_at), lsn: row.lsn, tasks: row.task_count }
}

export function jobView(row: JobRow, tasks: readonly TaskRow[], progress: ReadonlyMap<number, unknown>) {
  const counts = { total: tasks.length, queued: 0, running: 0, done: 0, failed: 0, dead: 0, cancelled: 0 }
  let progressSum = 0
  const results: unknown[] = []
  const errors: { index: number; error: string | null; attempts: number }[] = []
  const taskViews = tasks.map((task) => {
    const state = shownState(task.state)
    counts[state]++
    const value = progress.get(task.idx) ?? null
    if (task.state === 'done') progressSum += 1
    else if (typeof value === 'number' && Number.isFinite(value)) progressSum += Math.min(1, Math.max(0, value))
    results.push(task.result === null ? null : JSON.parse(task.result))
    if (task.state === 'dead') errors.push({ index: task.idx, error: task.error, attempts: task.attempts })
    return { index: task.idx, state, input: JSON.parse(task.input) as unknown, attempts: task.attempts, worker: task.worker, progress: value, error: task.error, lost_leases: task.lost_leases }
  })
  const { tasks: _taskCount, ...summary } = summaryOf(row)
  return {
    ...summary,
    options: optionsView(JSON.parse(row.options) as JobOptions),
    counts,
    progress: tasks.length === 0 ? 0 : progressSum / tasks.length,
    results,
    errors,
    tasks: taskViews,
  }
}

export function readJob(reads: JobReads, id: string, progress: ReadonlyMap<number, unknown>) {
  const row = reads.job(id)
  return row === undefined ? undefined : jobView(row, reads.tasks(id), progress)
}

function optionsView(options: JobOptions) {
  const { backoff } = options
  return {
    attempts: options.attempts,
    backoff: { type: backoff.type, delay_ms: backoff.delayMs, jitter: backoff.jitter, max_ms: backoff.maxMs },
    timeout_ms: options.timeoutMs,
    priority: options.priority,
    ...(options.group === undefined ? {} : { group: options.group }),
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}
