/**
 * The scheduler's view of the queue in memory: what is waiting, who holds which lease. The
 * tables hold the durable truth; this is rebuilt from them when a node becomes master.
 */
import { randomBytes } from 'node:crypto'
import type { JobOptions } from './job-spec.ts'

export interface Job {
  id: string
  name: string
  options: JobOptions
  lsn: number
  /** The results of the jobs it runs after (JSON text, ctx.after); undefined without `after`. */
  after?: string | undefined
  createdAt: number
  /** Tasks not yet done, dead or cancelled. Reaches 0 exactly once: then the job is finished. */
  open: number
  dead: number
  /** Tasks in the waiting state (see setState). 0 means the job is near its end. */
  waiting: number
  /** Tasks done here and the time they took, for backup copies of stragglers. */
  doneCount: number
  doneMsTotal: number
  isCancelled: boolean
}

/**
 * A task's assignment to a replica. A task has at most one primary lease (the one the table
 * records) and, near the end of a fan-out, one backup copy that lives only in memory.
 */
export interface Lease {
  task: Task
  epoch: number
  token: number
  worker: string
  startedAt: number
  renewedAt: number
  isBackup: boolean
}

/**
 * new: not queued yet. waiting: queued or failed (retrying) in the table. leasing/ending: a
 * write about it is in flight. leased: running on a replica. gone: finished or forgotten.
 */
export type TaskPhase = 'new' | 'waiting' | 'leasing' | 'leased' | 'ending' | 'gone'

export interface Task {
  job: Job
  index: number
  input: string
  phase: TaskPhase
  attempts: number
  lostLeases: number
  runAfter: number
  /** The newest lease token issued for this task (at least the table's lease_token). */
  token: number
  lease: Lease | undefined
  backup: Lease | undefined
  progress: unknown
  /** FIFO order among tasks of equal priority. */
  seq: number
}

export const keyOf = (job: string, index: number) => `${job}#${index}`

/** A new job's id: `j_`, the time in base 36 (ids sort by creation), and 16 random hex digits. */
export function newJobId(now: number): string {
  return `j_${Math.floor(now).toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`
}

/** Moves a task to `phase`, keeping its job's count of waiting tasks. */
export function setPhase(task: Task, phase: TaskPhase): void {
  if (task.phase === 'waiting' && phase !== 'waiting') task.job.waiting--
  else if (task.phase !== 'waiting' && phase === 'waiting') task.job.waiting++
  task.phase = phase
}

/** Higher priority first, then first queued. */
export function runsBefore(a: Task, b: Task): boolean {
  const pa = a.job.options.priority
  const pb = b.job.options.priority
  return pa !== pb ? pa > pb : a.seq < b.seq
}
