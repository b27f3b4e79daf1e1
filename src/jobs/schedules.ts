/**
 * Repeatable jobs on the master: each schedule makes one job per occurrence (schedule-spec.ts).
 *
 * Exactly once, across restarts and failovers: `_tandem_schedules.next_at` is the first
 * occurrence not yet made, and the write that makes an occurrence's job moves next_at past it
 * in the same transaction, only if next_at is still what this master read (a conditional
 * UPDATE); the job is keyed by its occurrence's time (a unique idempotency key) besides. Both
 * replicate: a promoted replica carries on from the table, so an occurrence is made once by
 * whichever master committed it, and one no master committed is made by the next (by the
 * schedule's catch-up rule when it is late).
 *
 * In memory only: the rows as last written here, to know what is due without a read per tick.
 */
import type { Clock } from '../shared/clock.ts'
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { JobOptions } from './job-spec.ts'
import type { JobWrites, NewJob } from './job-store.ts'
import { newJobId } from './queue-model.ts'
import { nextAfter, occurrenceHash, occurrenceKey, occurrencesDue, schedulesMax, type Rule, type ScheduleSpec } from './schedule-spec.ts'
import type { ScheduleReads, ScheduleRow, ScheduleWrites } from './schedule-store.ts'

export interface SchedulesOptions {
  /** Runs `fn` inside the write pipeline (an internal write); `nextLsn` is the entry it writes. */
  write: <T>(fn: (jobs: JobWrites, schedules: ScheduleWrites, nextLsn: number) => T) => Promise<{ value: T; lsn: number }>
  reads: ScheduleReads
  clock: Clock
  logger: Logger
  /** Whether the queue takes `tasks` more tasks now (--max-queued-tasks). */
  hasRoom: (tasks: number) => boolean
  /** Jobs this master just made, committed at `lsn`: the scheduler queues their tasks. */
  adopt: (jobs: NewJob[]) => void
}

/** A schedule as the API shows it. */
export interface ScheduleView {
  id: string
  name: string
  input: unknown
  cron: string | null
  every_ms: number | null
  tz: string | null
  catch_up: 'latest' | 'all'
  options: JobOptions
  next_at: string
  last_at: string | null
  last_job: string | null
  created_at: string
  updated_at: string
}

/** How often due schedules are looked for: an occurrence's job is made at most this late. */
export const tickMs = 100

export class Schedules {
  private readonly options: SchedulesOptions
  private readonly rows = new Map<string, ScheduleRow>()
  private readonly timer: NodeJS.Timeout
  private isFiring = false
  private isClosed = false
  /** Schedules that found the queue full: said once each until they fire again. */
  private readonly waitingForRoom = new Set<string>()
  readonly counters = { occurrences: 0, skippedFull: 0 }

  constructor(options: SchedulesOptions) {
    this.options = options
    this.timer = setInterval(() => this.fire(), tickMs)
    this.timer.unref()
  }

  /** Carries on with the schedules the table holds (a new master). */
  start(): void {
    for (const row of this.options.reads.all()) this.rows.set(row.id, row)
    if (this.rows.size > 0) this.options.logger.info({ schedules: this.rows.size }, 'carrying on with the schedules')
  }

  async upsert(spec: ScheduleSpec): Promise<{ schedule: ScheduleView; created: boolean; lsn: number }> {
    // Whole ms: occurrence times key their jobs and show as ISO times.
    const now = Math.floor(this.options.clock.now())
    const rule: Rule = { cron: spec.cron ?? null, everyMs: spec.everyMs ?? null, tz: spec.tz ?? null, anchorAt: now }
    const nextAt = nextAfter(rule, now)
    const { value, lsn } = await this.options.write((_jobs, schedules) => {
      const existing = schedules.get(spec.id)
      if (existing === undefined && schedules.count() >= schedulesMax) {
        throw new TandemError('OVERLOADED', `the master holds ${schedulesMax} schedules, the most it takes: delete one first`)
      }
      schedules.upsert(spec, now, nextAt, now)
      return { row: schedules.get(spec.id)!, created: existing === undefined }
    })
    this.rows.set(spec.id, value.row)
    this.waitingForRoom.delete(spec.id)
    return { schedule: viewOf(value.row), created: value.created, lsn }
  }

  async remove(id: string): Promise<number> {
    const { value: removed, lsn } = await this.options.write((_jobs, schedules) => schedules.delete(id))
    this.rows.delete(id)
    if (!removed) throw new TandemError('SCHEDULE_NOT_FOUND', `no schedule ${id}`)
    return lsn
  }

  get(id: string): ScheduleView | undefined {
    const row = this.options.reads.get(id)
    return row === undefined ? undefined : viewOf(row)
  }

  list(): ScheduleView[] {
    return this.options.reads.all().map(viewOf)
  }

  stats(): Record<string, unknown> {
    return { schedules: this.rows.size, occurrences_made: this.counters.occurrences, occurrences_waiting_for_room: this.counters.skippedFull }
  }

  close(): void {
    this.isClosed = true
    clearInterval(this.timer)
  }

  /** Makes the jobs of every occurrence due, in one write; one round at a time. */
  private fire(): void {
    if (this.isFiring || this.isClosed) return
    const now = this.options.clock.now()
    const due = [...this.rows.values()].filter((row) => row.next_at <= now)
    if (due.length === 0) return
    this.isFiring = true
    this.options
      .write((jobs, schedules, nextLsn) => due.map((known) => this.makeDue(jobs, schedules, known, now, nextLsn)).filter((made) => made !== undefined))
      .then(({ value: made }) => {
        for (const { row, jobs } of made) {
          if (this.rows.has(row.id)) this.rows.set(row.id, row)
          this.counters.occurrences += jobs.length
          if (jobs.length > 0) this.options.adopt(jobs)
        }
      })
      .catch((error: unknown) => {
        if (!this.isClosed) this.options.logger.warn({ err: error }, `could not make the jobs of due schedules: ${messageOf(error)}`)
      })
      .finally(() => {
        this.isFiring = false
      })
  }

  /** Inside the write: one schedule's due occurrences, made if the table still says they are due. */
  private makeDue(jobs: JobWrites, schedules: ScheduleWrites, known: ScheduleRow, now: number, lsn: number): { row: ScheduleRow; jobs: NewJob[] } | undefined {
    const row = schedules.get(known.id)
    // Deleted or changed since this master read it: what the table says is the truth.
    if (row === undefined || row.next_at !== known.next_at || row.updated_at !== known.updated_at) return row === undefined ? undefined : { row, jobs: [] }
    const rule = ruleOf(row)
    const times = occurrencesDue(rule, row.catch_up, row.next_at, now)
    if (times.length === 0) return undefined
    if (!this.options.hasRoom(times.length)) {
      this.counters.skippedFull++
      if (!this.waitingForRoom.has(row.id)) this.options.logger.warn({ schedule: row.id, occurrences: times.length }, 'the job queue is full (--max-queued-tasks): the schedule waits for room, then catches up')
      this.waitingForRoom.add(row.id)
      return undefined
    }
    this.waitingForRoom.delete(row.id)
    const made: NewJob[] = []
    const options = JSON.parse(row.options) as JobOptions
    for (const at of times) {
      const key = occurrenceKey(row.id, at)
      if (jobs.jobByKey(key) !== undefined) continue
      const job: NewJob = { id: newJobId(now), name: row.name, options, inputs: [row.input], lsn, idempotencyKey: key, requestHash: occurrenceHash(row.id, at), createdAt: now, runAfter: now }
      jobs.insertJob(job)
      made.push(job)
    }
    const lastAt = times.at(-1)!
    const nextAt = nextAfter(rule, lastAt)
    const lastJob = made.at(-1)?.id ?? row.last_job ?? ''
    if (!schedules.advance(row.id, row.next_at, nextAt, lastAt, lastJob)) throw new Error(`schedule ${row.id} changed under its own write`)
    return { row: { ...row, next_at: nextAt, last_at: lastAt, last_job: lastJob }, jobs: made }
  }
}

function ruleOf(row: ScheduleRow): Rule {
  return { cron: row.cron, everyMs: row.every_ms, tz: row.tz, anchorAt: row.anchor_at }
}

const iso = (ms: number) => new Date(ms).toISOString()

function viewOf(row: ScheduleRow): ScheduleView {
  return {
    id: row.id,
    name: row.name,
    input: JSON.parse(row.input) as unknown,
    cron: row.cron,
    every_ms: row.every_ms,
    tz: row.tz,
    catch_up: row.catch_up,
    options: JSON.parse(row.options) as JobOptions,
    next_at: iso(row.next_at),
    last_at: row.last_at === null ? null : iso(row.last_at),
    last_job: row.last_job,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }
}
