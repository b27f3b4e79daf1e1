/**
 * The queue's tables. They replicate like any other table (their rows change only through the
 * master's write pipeline, as internal writes), so every replica holds the queue and a promoted
 * replica inherits it. Every node creates them at start, outside any captured transaction.
 *
 *     _tandem_jobs   one row per job: its handler, options, the LSN of its own entry (a task
 *                    waits until its replica has applied it), and its state
 *     _tandem_tasks  one row per input: state, attempts, the live lease (epoch, token, replica),
 *                    and the result or last error
 *     _tandem_job_dedupe  one row per dedupe key: the job that holds it, since when, and for
 *                    how long (window_ms; NULL: while the job is unfinished)
 *     _tandem_job_deps  one row per job a job runs after (`after`), with what happens to it when
 *                    that job ends failed or cancelled (on_failure: fail or continue)
 *     _tandem_job_limits  one row per limit (limits.ts): its scope (handler:NAME, group:KEY,
 *                    group:*), how many of its tasks may run at once, and start per period
 *     _tandem_schedules  one row per schedule: its rule (cron and tz, or every_ms from
 *                    anchor_at), the job it makes, and next_at, the first occurrence not yet
 *                    made: it moves in the same transaction as the occurrence's job is made
 *
 * Job states: waiting (for the jobs it runs after) → queued → running → completed | failed;
 * any unfinished state → cancelled.
 * Task states: queued → leased → done | failed (waits for its backoff, then queued again) |
 * dead (no attempts left); any unfinished state → cancelled. `lease_token` only grows: it is the
 * fencing token of the newest assignment.
 */
import type { Connection } from '../storage/index.ts'

export const jobStates = ['waiting', 'queued', 'running', 'completed', 'failed', 'cancelled'] as const
export type JobState = (typeof jobStates)[number]

export const taskStates = ['queued', 'leased', 'done', 'failed', 'dead', 'cancelled'] as const
export type TaskState = (typeof taskStates)[number]

export const finishedJobStates: readonly JobState[] = ['completed', 'failed', 'cancelled']
export const finishedTaskStates: readonly TaskState[] = ['done', 'dead', 'cancelled']

const schema = `
  CREATE TABLE IF NOT EXISTS _tandem_jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    options TEXT NOT NULL,
    task_count INTEGER NOT NULL,
    lsn INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX IF NOT EXISTS _tandem_jobs_key ON _tandem_jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
  CREATE INDEX IF NOT EXISTS _tandem_jobs_created ON _tandem_jobs(created_at, id);
  CREATE TABLE IF NOT EXISTS _tandem_tasks (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    input TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lost_leases INTEGER NOT NULL DEFAULT 0,
    run_after REAL NOT NULL,
    lease_epoch INTEGER,
    lease_token INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    result TEXT,
    error TEXT,
    started_at REAL,
    finished_at REAL,
    PRIMARY KEY (job_id, idx)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS _tandem_tasks_open ON _tandem_tasks(state) WHERE state IN ('queued', 'leased', 'failed');
  CREATE TABLE IF NOT EXISTS _tandem_job_dedupe (
    key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    window_ms REAL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS _tandem_job_dedupe_job ON _tandem_job_dedupe(job_id);
  CREATE TABLE IF NOT EXISTS _tandem_job_deps (
    job_id TEXT NOT NULL,
    after_id TEXT NOT NULL,
    on_failure TEXT NOT NULL,
    PRIMARY KEY (job_id, after_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS _tandem_job_deps_after ON _tandem_job_deps(after_id);
  CREATE TABLE IF NOT EXISTS _tandem_job_limits (
    scope TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_max INTEGER,
    rate_period_ms INTEGER,
    updated_at REAL NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS _tandem_schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    options TEXT NOT NULL,
    cron TEXT,
    every_ms INTEGER,
    tz TEXT,
    catch_up TEXT NOT NULL,
    anchor_at REAL NOT NULL,
    next_at REAL NOT NULL,
    last_at REAL,
    last_job TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
  ) WITHOUT ROWID;
`

/** Creates the queue's tables if they are missing (call with the SQL policy suspended). */
export function ensureJobSchema(connection: Connection): void {
  connection.exec(schema)
}
