/**
 * SQL over `_tandem_schedules` (job-schema.ts). `ScheduleWrites` runs inside the master's write
 * pipeline, like JobWrites; `ScheduleReads` on a read-only connection.
 */
import type { Connection, Statement } from '../storage/index.ts'
import type { ScheduleSpec } from './schedule-spec.ts'

export interface ScheduleRow {
  id: string
  name: string
  input: string
  options: string
  cron: string | null
  every_ms: number | null
  tz: string | null
  catch_up: 'latest' | 'all'
  anchor_at: number
  next_at: number
  last_at: number | null
  last_job: string | null
  created_at: number
  updated_at: number
}

function prepared(connection: Connection): (sql: string) => Statement {
  const cache = new Map<string, Statement>()
  return (sql) => {
    let statement = cache.get(sql)
    if (statement === undefined) cache.set(sql, (statement = connection.prepare(sql)))
    return statement
  }
}

/** Reads: on the master's read-only connection for the API; on the writer inside a write. */
export class ScheduleReads {
  protected readonly sql: (sql: string) => Statement

  constructor(connection: Connection) {
    this.sql = prepared(connection)
  }

  get(id: string): ScheduleRow | undefined {
    return this.sql('SELECT * FROM _tandem_schedules WHERE id = ?').get(id) as ScheduleRow | undefined
  }

  all(): ScheduleRow[] {
    return this.sql('SELECT * FROM _tandem_schedules ORDER BY id').all() as ScheduleRow[]
  }

  count(): number {
    return (this.sql('SELECT count(*) AS n FROM _tandem_schedules').get() as { n: number }).n
  }
}

export class ScheduleWrites extends ScheduleReads {
  /**
   * Creates the schedule, or replaces its rule and job (an update keeps when it was created and
   * what it made last; its next occurrence is computed again from now).
   */
  upsert(spec: ScheduleSpec, anchorAt: number, nextAt: number, now: number): void {
    this.sql(
      `INSERT INTO _tandem_schedules(id, name, input, options, cron, every_ms, tz, catch_up, anchor_at, next_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET name = excluded.name, input = excluded.input, options = excluded.options, cron = excluded.cron,
         every_ms = excluded.every_ms, tz = excluded.tz, catch_up = excluded.catch_up, anchor_at = excluded.anchor_at,
         next_at = excluded.next_at, updated_at = excluded.updated_at`,
    ).run(spec.id, spec.name, spec.input, JSON.stringify(spec.options), spec.cron ?? null, spec.everyMs ?? null, spec.tz ?? null, spec.catchUp, anchorAt, nextAt, now, now)
  }

  /** Moves next_at on from `expectedNextAt`; false when the row changed meanwhile (then nothing did). */
  advance(id: string, expectedNextAt: number, nextAt: number, lastAt: number, lastJob: string): boolean {
    const changed = this.sql('UPDATE _tandem_schedules SET next_at = ?, last_at = ?, last_job = ? WHERE id = ? AND next_at = ?').run(nextAt, lastAt, lastJob, id, expectedNextAt).changes
    return Number(changed) === 1
  }

  delete(id: string): boolean {
    return Number(this.sql('DELETE FROM _tandem_schedules WHERE id = ?').run(id).changes) === 1
  }
}
