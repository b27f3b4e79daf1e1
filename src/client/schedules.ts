/**
 * `client.jobs.schedules`: repeatable jobs (docs/jobs.md, Schedules). The master makes one job
 * per occurrence, exactly once, across failovers. Every call goes to the master; a replica
 * answers 301 to the POST and DELETE (`redirect`), and forwards the GETs.
 *
 * ```ts
 * await client.jobs.schedules.set('nightly-report', 'report', { cron: '0 3 * * *', tz: 'Europe/Paris', input: { full: true } })
 * await client.jobs.schedules.set('heartbeat', 'ping', { everyMs: 60_000 })
 * await client.jobs.schedules.delete('heartbeat')
 * ```
 */
import { TandemClientError } from './client-errors.ts'
import type { Backoff } from './job.ts'
import type { CallOptions, JobsConnection } from './jobs.ts'
import { stringifyJson } from './json-codec.ts'
import { callMaster, type MasterCall } from './master-call.ts'
import { badResponse } from './results.ts'

export interface ScheduleRule {
  /** 5 fields (minute hour day month weekday), or 6 with seconds first. Give this or everyMs. */
  cron?: string
  /** The cron expression's IANA time zone (default UTC). */
  tz?: string
  /** An occurrence every this long (≥ 1 000 ms) from when the schedule is set. */
  everyMs?: number
  /** The input of every occurrence's job (any JSON value). */
  input?: unknown
  /** After a time without a master: one job for the occurrences missed (`latest`, the default), or one each (`all`). */
  catchUp?: 'latest' | 'all'
  attempts?: number
  backoff?: Partial<Backoff>
  timeoutMs?: number
  priority?: number
  group?: string
}

export interface Schedule {
  id: string
  name: string
  input: unknown
  cron: string | null
  everyMs: number | null
  tz: string | null
  catchUp: 'latest' | 'all'
  nextAt: Date
  lastAt: Date | null
  /** The job the last occurrence made. */
  lastJob: string | null
  createdAt: Date
  updatedAt: Date
}

export class Schedules {
  private readonly connection: JobsConnection

  /** Use `client.jobs.schedules`. */
  constructor(connection: JobsConnection) {
    this.connection = connection
  }

  /** Creates schedule `id` making jobs of handler `name`, or replaces the one with that id. */
  async set(id: string, name: string, rule: ScheduleRule, options: CallOptions = {}): Promise<Schedule> {
    const body: Record<string, unknown> = { id: checkedId(id), name, input: rule.input ?? null }
    if (rule.cron !== undefined) body['cron'] = rule.cron
    if (rule.tz !== undefined) body['tz'] = rule.tz
    if (rule.everyMs !== undefined) body['every_ms'] = rule.everyMs
    if (rule.catchUp !== undefined) body['catch_up'] = rule.catchUp
    if (rule.attempts !== undefined) body['attempts'] = rule.attempts
    if (rule.timeoutMs !== undefined) body['timeout_ms'] = rule.timeoutMs
    if (rule.priority !== undefined) body['priority'] = rule.priority
    if (rule.group !== undefined) body['group'] = rule.group
    if (rule.backoff !== undefined) {
      const { type, delayMs, jitter, maxMs } = rule.backoff
      body['backoff'] = { ...(type === undefined ? {} : { type }), ...(delayMs === undefined ? {} : { delay_ms: delayMs }), ...(jitter === undefined ? {} : { jitter }), ...(maxMs === undefined ? {} : { max_ms: maxMs }) }
    }
    // Setting the same schedule twice is harmless: it is sent again after a lost answer.
    const answer = await this.call({ method: 'POST', path: '/schedules?redirect', body: stringifyJson(body), isRepeatable: true, what: `setting schedule ${id}` }, options)
    return decodeSchedule(answer.body, answer.node)
  }

  /** The schedule; SCHEDULE_NOT_FOUND when there is none. */
  async get(id: string, options: CallOptions = {}): Promise<Schedule> {
    const answer = await this.call({ method: 'GET', path: `/schedules/${encodeURIComponent(checkedId(id))}`, what: `the read of schedule ${id}` }, options)
    return decodeSchedule(answer.body, answer.node)
  }

  async list(options: CallOptions = {}): Promise<Schedule[]> {
    const answer = await this.call({ method: 'GET', path: '/schedules', what: 'the schedule list' }, options)
    const schedules = (answer.body as { schedules?: unknown } | undefined)?.schedules
    if (!Array.isArray(schedules)) throw badResponse(answer.node, 'a schedule list without "schedules"')
    return schedules.map((schedule) => decodeSchedule(schedule, answer.node))
  }

  /** Deletes the schedule (its jobs made so far stay); SCHEDULE_NOT_FOUND when there was none. */
  async delete(id: string, options: CallOptions = {}): Promise<void> {
    await this.call({ method: 'DELETE', path: `/schedules/${encodeURIComponent(checkedId(id))}?redirect`, what: `the deletion of schedule ${id}` }, options)
  }

  private call(call: Omit<MasterCall, 'timeoutMs' | 'signal'>, options: CallOptions) {
    return this.connection.run(() => callMaster(this.connection, { ...call, timeoutMs: options.timeoutMs ?? this.connection.settings.timeoutMs, signal: options.signal }))
  }
}

function checkedId(id: string): string {
  if (typeof id !== 'string' || id === '') throw new TandemClientError('BAD_REQUEST', 'a schedule id is a non-empty string')
  return id
}

function decodeSchedule(value: unknown, node: string): Schedule {
  const v = value as Record<string, unknown> | undefined
  if (typeof v?.['id'] !== 'string' || typeof v['next_at'] !== 'string') throw badResponse(node, `a schedule without an id or next_at: ${JSON.stringify(value) ?? 'nothing'}`)
  const date = (field: string) => (typeof v[field] === 'string' ? new Date(v[field]) : null)
  return {
    id: v['id'],
    name: String(v['name']),
    input: v['input'],
    cron: typeof v['cron'] === 'string' ? v['cron'] : null,
    everyMs: typeof v['every_ms'] === 'number' ? v['every_ms'] : null,
    tz: typeof v['tz'] === 'string' ? v['tz'] : null,
    catchUp: v['catch_up'] === 'all' ? 'all' : 'latest',
    nextAt: new Date(v['next_at']),
    lastAt: date('last_at'),
    lastJob: typeof v['last_job'] === 'string' ? v['last_job'] : null,
    createdAt: date('created_at') ?? new Date(0),
    updatedAt: date('updated_at') ?? new Date(0),
  }
}
