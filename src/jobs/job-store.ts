/**
 * SQL over the queue's tables. `JobWrites` runs inside the master's write pipeline (internal
 * writes: the caller is inside the batch's transaction, with the SQL policy suspended);
 * `JobReads` answers `GET /jobs` on a read-only connection. Statements are prepared once.
 */
import type { Connection, Statement } from '../storage/index.ts'
import type { JobState, TaskState } from './job-schema.ts'
import type { JobOptions } from './job-spec.ts'
import type { Limit } from './limits.ts'

class Statements {
  private readonly cache = new Map<string, Statement>()
  private readonly connection: Connection

  constructor(connection: Connection) {
    this.connection = connection
  }

  get(sql: string): Statement {
    let statement = this.cache.get(sql)
    if (statement === undefined) {
      statement = this.connection.prepare(sql)
      this.cache.set(sql, statement)
    }
    return statement
  }
}

export interface JobRow {
  id: string
  name: string
  state: JobState
  options: string
  task_count: number
  lsn: number
  idempotency_key: string | null
  request_hash: string
  created_at: number
  finished_at: number | null
}

export interface TaskRow {
  job_id: string
  idx: number
  state: TaskState
  input: string
  attempts: number
  lost_leases: number
  run_after: number
  lease_epoch: number | null
  lease_token: number
  worker: string | null
  result: string | null
  error: string | null
  started_at: number | null
  finished_at: number | null
}

export interface DedupeHolder {
  job_id: string
  created_at: number
  window_ms: number | null
  state: JobState
  finished_at: number | null
  task_count: number
}

export interface NewJob {
  id: string
  /** Default queued; waiting: it runs after other jobs (_tandem_job_deps). */
  state?: 'queued' | 'waiting'
  name: string
  options: JobOptions
  inputs: readonly string[]
  lsn: number
  idempotencyKey: string | undefined
  requestHash: string
  createdAt: number
  runAfter: number
}

/**
 * How a lease ends: done (`worker` ran it: the lease holder, or the replica that ran its backup
 * copy), failed (retry after `runAfter`) or dead, or lost (its replica stopped renewing it).
 */
export type LeaseEnd =
  | { state: 'done'; result: string; worker: string }
  | { state: 'failed' | 'dead'; error: string; runAfter: number }
  | { state: 'queued' | 'dead'; lostLease: true; error: string }

/**
 * What a job's tasks get as `ctx.after`: for each job it runs after, that job's results in
 * input order (null for a task with none), as JSON text; undefined for a job without `after`.
 */
function afterResults(sql: (sql: string) => Statement, jobId: string): string | undefined {
  const deps = sql('SELECT after_id FROM _tandem_job_deps WHERE job_id = ? ORDER BY after_id').all(jobId) as { after_id: string }[]
  if (deps.length === 0) return undefined
  const results = sql('SELECT result FROM _tandem_tasks WHERE job_id = ? ORDER BY idx')
  const parts = deps.map(({ after_id: id }) => `${JSON.stringify(id)}:[${(results.all(id) as { result: string | null }[]).map((r) => r.result ?? 'null').join(',')}]`)
  return `{${parts.join(',')}}`
}

export class JobWrites {
  private readonly sql: Statements

  constructor(connection: Connection) {
    this.sql = new Statements(connection)
  }

  /** The job holding dedupe `key`, with what deciding on a new submission needs; undefined when none does. */
  dedupeHolder(key: string): DedupeHolder | undefined {
    return this.sql
      .get(
        `SELECT d.job_id, d.created_at, d.window_ms, j.state, j.finished_at, j.task_count FROM _tandem_job_dedupe d JOIN _tandem_jobs j ON j.id = d.job_id WHERE d.key = ?`,
      )
      .get(key) as DedupeHolder | undefined
  }

  holdDedupe(key: string, jobId: string, createdAt: number, windowMs: number | undefined): void {
    this.sql.get('INSERT OR REPLACE INTO _tandem_job_dedupe(key, job_id, created_at, window_ms) VALUES (?, ?, ?, ?)').run(key, jobId, createdAt, windowMs ?? null)
  }

  /**
   * A debounce: the waiting single task of `jobId` takes `input` and waits until `runAfter`;
   * the job's LSN becomes this entry's (its task sees what was written before the newest
   * submission). False when the task is no longer queued: then nothing changed.
   */
  debounce(jobId: string, input: string, runAfter: number, lsn: number): boolean {
    const changed = this.sql.get(`UPDATE _tandem_tasks SET input = ?, run_after = ? WHERE job_id = ? AND idx = 0 AND state = 'queued'`).run(input, runAfter, jobId).changes
    if (Number(changed) !== 1) return false
    this.sql.get('UPDATE _tandem_jobs SET lsn = ? WHERE id = ?').run(lsn, jobId)
    return true
  }

  /** The state of each of `ids` that exists. */
  statesOf(ids: readonly string[]): Map<string, JobState> {
    const get = this.sql.get('SELECT state FROM _tandem_jobs WHERE id = ?')
    const states = new Map<string, JobState>()
    for (const id of ids) {
      const row = get.get(id) as { state: JobState } | undefined
      if (row !== undefined) states.set(id, row.state)
    }
    return states
  }

  addDependencies(jobId: string, afterIds: readonly string[], onFailure: string): void {
    const insert = this.sql.get('INSERT INTO _tandem_job_deps(job_id, after_id, on_failure) VALUES (?, ?, ?)')
    for (const afterId of afterIds) insert.run(jobId, afterId, onFailure)
  }

  /** A waiting job may run: queued, at this entry's LSN (its tasks see the results it waited for). False when it was not waiting. */
  release(jobId: string, lsn: number): boolean {
    return Number(this.sql.get(`UPDATE _tandem_jobs SET state = 'queued', lsn = ? WHERE id = ? AND state = 'waiting'`).run(lsn, jobId).changes) === 1
  }

  /** A waiting job fails without running: its tasks are dead with `error`. False when it was not waiting. */
  failWaiting(jobId: string, error: string, now: number): boolean {
    const changed = this.sql.get(`UPDATE _tandem_jobs SET state = 'failed', finished_at = ? WHERE id = ? AND state = 'waiting'`).run(now, jobId).changes
    if (Number(changed) !== 1) return false
    this.sql.get(`UPDATE _tandem_tasks SET state = 'dead', error = ?, finished_at = ? WHERE job_id = ? AND state = 'queued'`).run(error, now, jobId)
    return true
  }

  afterResults(jobId: string): string | undefined {
    return afterResults((sql) => this.sql.get(sql), jobId)
  }

  /** Sets a limit (replacing the scope's), unless there are limitsMax already; false then. */
  setLimit(limit: Limit, now: number, max: number): boolean {
    const exists = this.sql.get('SELECT 1 FROM _tandem_job_limits WHERE scope = ?').get(limit.scope) !== undefined
    if (!exists && (this.sql.get('SELECT count(*) AS n FROM _tandem_job_limits').get() as { n: number }).n >= max) return false
    this.sql
      .get('INSERT OR REPLACE INTO _tandem_job_limits(scope, concurrency, rate_max, rate_period_ms, updated_at) VALUES (?, ?, ?, ?, ?)')
      .run(limit.scope, limit.concurrency ?? null, limit.rate?.max ?? null, limit.rate?.periodMs ?? null, now)
    return true
  }

  deleteLimit(scope: string): boolean {
    return Number(this.sql.get('DELETE FROM _tandem_job_limits WHERE scope = ?').run(scope).changes) === 1
  }

  jobByKey(key: string): JobRow | undefined {
    return this.sql.get('SELECT * FROM _tandem_jobs WHERE idempotency_key = ?').get(key) as JobRow | undefined
  }

  insertJob(job: NewJob): void {
    this.sql
      .get('INSERT INTO _tandem_jobs(id, name, state, options, task_count, lsn, idempotency_key, request_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(job.id, job.name, job.state ?? 'queued', JSON.stringify(job.options), job.inputs.length, job.lsn, job.idempotencyKey ?? null, job.requestHash, job.createdAt)
    const insertTask = this.sql.get(`INSERT INTO _tandem_tasks(job_id, idx, state, input, run_after) VALUES (?, ?, 'queued', ?, ?)`)
    for (let i = 0; i < job.inputs.length; i++) insertTask.run(job.id, i, job.inputs[i]!, job.runAfter)
  }

  /** Leases a queued (or failed, retrying) task; false when it is no longer waiting. */
  lease(jobId: string, index: number, epoch: number, token: number, worker: string, now: number): boolean {
    const changed = this.sql
      .get(`UPDATE _tandem_tasks SET state = 'leased', lease_epoch = ?, lease_token = ?, worker = ?, started_at = ? WHERE job_id = ? AND idx = ? AND state IN ('queued', 'failed') AND lease_token < ?`)
      .run(epoch, token, worker, now, jobId, index, token).changes
    if (Number(changed) === 1) this.sql.get(`UPDATE _tandem_jobs SET state = 'running' WHERE id = ? AND state = 'queued'`).run(jobId)
    return Number(changed) === 1
  }

  /**
   * Ends the live lease: done with a result, failed (retry after `runAfter`) or dead with an
   * error, or back to queued (a lost lease). False when the lease is no longer the live one:
   * then nothing changed.
   */
  endLease(
    jobId: string,
    index: number,
    lease: { epoch: number; token: number },
    outcome: LeaseEnd,
    now: number,
  ): boolean {
    const where = `WHERE job_id = ? AND idx = ? AND state = 'leased' AND lease_epoch = ? AND lease_token = ?`
    const key = [jobId, index, lease.epoch, lease.token]
    let changed: number | bigint
    if (outcome.state === 'done') {
      changed = this.sql
        .get(`UPDATE _tandem_tasks SET state = 'done', result = ?, error = NULL, worker = ?, attempts = attempts + 1, finished_at = ? ${where}`)
        .run(outcome.result, outcome.worker, now, ...key).changes
    } else if ('lostLease' in outcome) {
      changed = this.sql
        .get(`UPDATE _tandem_tasks SET state = ?, error = ?, lost_leases = lost_leases + 1, worker = NULL, finished_at = CASE WHEN ? = 'dead' THEN ? END ${where}`)
        .run(outcome.state, outcome.error, outcome.state, now, ...key).changes
    } else {
      changed = this.sql
        .get(`UPDATE _tandem_tasks SET state = ?, error = ?, attempts = attempts + 1, run_after = ?, finished_at = CASE WHEN ? = 'dead' THEN ? END ${where}`)
        .run(outcome.state, outcome.error, outcome.runAfter, outcome.state, now, ...key).changes
    }
    return Number(changed) === 1
  }

  /**
   * Marks the job finished, if it is not already and none of its tasks is unfinished: a retry
   * or a cancel committed in the same batch, just before, wins. True when it finished it.
   */
  finishJob(jobId: string, state: JobState, now: number): boolean {
    const changed = this.sql
      .get(
        `UPDATE _tandem_jobs SET state = ?, finished_at = ? WHERE id = ? AND finished_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM _tandem_tasks WHERE job_id = ? AND state IN ('queued', 'leased', 'failed'))`,
      )
      .run(state, now, jobId, jobId).changes
    return Number(changed) === 1
  }

  /** Cancels the job and every unfinished task of it; false when the job had already finished. */
  cancel(jobId: string, now: number): boolean {
    const changed = this.sql.get(`UPDATE _tandem_jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND finished_at IS NULL`).run(now, jobId).changes
    if (Number(changed) === 0) return false
    this.sql.get(`UPDATE _tandem_tasks SET state = 'cancelled', finished_at = ? WHERE job_id = ? AND state IN ('queued', 'leased', 'failed')`).run(now, jobId)
    return true
  }

  stateOf(jobId: string): JobState | undefined {
    return (this.sql.get('SELECT state FROM _tandem_jobs WHERE id = ?').get(jobId) as { state: JobState } | undefined)?.state
  }

  /** Queues a job's dead and cancelled tasks again, with fresh attempts; returns them. */
  retry(jobId: string, now: number): TaskRow[] {
    const tasks = this.sql.get(`SELECT * FROM _tandem_tasks WHERE job_id = ? AND state IN ('dead', 'cancelled') ORDER BY idx`).all(jobId) as TaskRow[]
    if (tasks.length === 0) return tasks
    this.sql
      .get(`UPDATE _tandem_tasks SET state = 'queued', attempts = 0, lost_leases = 0, error = NULL, worker = NULL, run_after = ?, finished_at = NULL WHERE job_id = ? AND state IN ('dead', 'cancelled')`)
      .run(now, jobId)
    const started = this.sql.get(`SELECT count(*) AS n FROM _tandem_tasks WHERE job_id = ? AND state <> 'queued'`).get(jobId) as { n: number }
    this.sql.get('UPDATE _tandem_jobs SET state = ?, finished_at = NULL WHERE id = ?').run(started.n > 0 ? 'running' : 'queued', jobId)
    return tasks.map((t) => ({ ...t, state: 'queued' as const, attempts: 0, lost_leases: 0, error: null, run_after: now }))
  }

  /** Deletes finished jobs (and their tasks) that finished before `before`, or beyond the newest `keep`; at most `limit`. */
  expire(before: number, keep: number, limit: number): number {
    const ids = this.sql
      .get(
        `SELECT id FROM _tandem_jobs WHERE finished_at IS NOT NULL AND (finished_at < ? OR id IN (
           SELECT id FROM _tandem_jobs WHERE finished_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?)) LIMIT ?`,
      )
      .all(before, keep, limit) as { id: string }[]
    const deleteTasks = this.sql.get('DELETE FROM _tandem_tasks WHERE job_id = ?')
    const deleteJob = this.sql.get('DELETE FROM _tandem_jobs WHERE id = ?')
    const deleteDedupe = this.sql.get('DELETE FROM _tandem_job_dedupe WHERE job_id = ?')
    const deleteDependencies = this.sql.get('DELETE FROM _tandem_job_deps WHERE job_id = ?')
    for (const { id } of ids) {
      deleteTasks.run(id)
      deleteJob.run(id)
      deleteDedupe.run(id)
      deleteDependencies.run(id)
    }
    return ids.length
  }
}

export class JobReads {
  private readonly sql: Statements

  constructor(connection: Connection) {
    this.sql = new Statements(connection)
  }

  job(id: string): JobRow | undefined {
    return this.sql.get('SELECT * FROM _tandem_jobs WHERE id = ?').get(id) as JobRow | undefined
  }

  tasks(jobId: string): TaskRow[] {
    return this.sql.get('SELECT * FROM _tandem_tasks WHERE job_id = ? ORDER BY idx').all(jobId) as TaskRow[]
  }

  /** Unfinished jobs and their unfinished tasks: what a new master must carry on with. */
  openJobs(): JobRow[] {
    return this.sql.get(`SELECT * FROM _tandem_jobs WHERE state IN ('waiting', 'queued', 'running') ORDER BY created_at, id`).all() as JobRow[]
  }

  limits(): Limit[] {
    const rows = this.sql.get('SELECT * FROM _tandem_job_limits ORDER BY scope').all() as { scope: string; concurrency: number | null; rate_max: number | null; rate_period_ms: number | null }[]
    return rows.map((r) => ({ scope: r.scope, concurrency: r.concurrency ?? undefined, rate: r.rate_max === null || r.rate_period_ms === null ? undefined : { max: r.rate_max, periodMs: r.rate_period_ms } }))
  }

  /** The jobs `jobId` runs after, with its rule for their failure. */
  dependencies(jobId: string): { after_id: string; on_failure: string }[] {
    return this.sql.get('SELECT after_id, on_failure FROM _tandem_job_deps WHERE job_id = ? ORDER BY after_id').all(jobId) as { after_id: string; on_failure: string }[]
  }

  afterResults(jobId: string): string | undefined {
    return afterResults((sql) => this.sql.get(sql), jobId)
  }

  openTasks(): TaskRow[] {
    return this.sql.get(`SELECT * FROM _tandem_tasks WHERE state IN ('queued', 'leased', 'failed')`).all() as TaskRow[]
  }

  list(filter: { state?: string; name?: string; limit: number; before?: string }): JobRow[] {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.state !== undefined) {
      where.push('state = ?')
      params.push(filter.state)
    }
    if (filter.name !== undefined) {
      where.push('name = ?')
      params.push(filter.name)
    }
    if (filter.before !== undefined) {
      where.push('(created_at, id) < (SELECT created_at, id FROM _tandem_jobs WHERE id = ?)')
      params.push(filter.before)
    }
    const sql = `SELECT * FROM _tandem_jobs ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY created_at DESC, id DESC LIMIT ?`
    return this.sql.get(sql).all(...params, filter.limit) as JobRow[]
  }

  counts(jobId: string): Record<TaskState, number> {
    const rows = this.sql.get('SELECT state, count(*) AS n FROM _tandem_tasks WHERE job_id = ? GROUP BY state').all(jobId) as { state: TaskState; n: number }[]
    const counts: Record<TaskState, number> = { queued: 0, leased: 0, done: 0, failed: 0, dead: 0, cancelled: 0 }
    for (const row of rows) counts[row.state] = row.n
    return counts
  }
}
