/**
 * What `POST /schedules` asks for, validated (every field before anything is stored), and when a
 * schedule's occurrences fall.
 *
 * A schedule makes one single-task job per occurrence. Its occurrences are those of a cron
 * expression (five fields, or six with seconds first; in `tz`, an IANA time zone, UTC by
 * default), or every `every_ms` from the moment it was created. The time of each occurrence
 * keys its job (`_tandem_schedule:<id>@<ms>`), so an occurrence is made at most once.
 */
import { createHash } from 'node:crypto'
import { CronExpressionParser } from 'cron-parser'
import { bad, checkDepth, integerField, parseJobOptions, refuseUnknownFields, reservedKeyPrefix, type JobOptions } from './job-spec.ts'

/**
 * After a time without a master (or with the queue full): `latest` makes one job, for the most
 * recent occurrence missed, and goes on from the next one; `all` makes every occurrence missed,
 * oldest first, at most `catchUpBatchMax` per round.
 */
export type CatchUp = 'latest' | 'all'

export interface ScheduleSpec {
  id: string
  name: string
  /** JSON text, as the handler will get it. */
  input: string
  options: JobOptions
  cron: string | undefined
  everyMs: number | undefined
  /** The cron expression's time zone; undefined: UTC. */
  tz: string | undefined
  catchUp: CatchUp
}

export const scheduleIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/
export const everyMsMin = 1000
export const everyMsMax = 366 * 24 * 60 * 60 * 1000
/** Schedules a master holds: past it, a new one is refused. */
export const schedulesMax = 10_000
/** Occurrences one round of catch-up `all` makes for one schedule. */
export const catchUpBatchMax = 100

const known = new Set(['id', 'name', 'input', 'cron', 'tz', 'every_ms', 'catch_up', 'attempts', 'backoff', 'timeout_ms', 'priority', 'group'])

export function parseScheduleSpec(body: unknown): ScheduleSpec {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object: {"id": …, "name": …, "cron": … or "every_ms": …, "input": …}')
  const fields = body as Record<string, unknown>
  refuseUnknownFields(fields, known)
  const id = fields['id']
  if (typeof id !== 'string' || !scheduleIdPattern.test(id)) throw bad('"id" must name the schedule: 1 to 128 letters, digits and _ . : - (starting with a letter or digit)')
  const name = fields['name']
  if (typeof name !== 'string' || !/^[A-Za-z_$][\w$]{0,127}$/.test(name)) throw bad('"name" must be the name of a handler (an exported function name)')
  checkDepth(fields['input'], '"input"')
  const input = JSON.stringify(fields['input'] ?? null)
  const cron = fields['cron']
  const everyMs = integerField(fields, 'every_ms', everyMsMin, everyMsMax)
  if ((cron === undefined) === (everyMs === undefined)) throw bad('give exactly one of "cron" (an expression such as "0 3 * * *") and "every_ms" (at least 1000)')
  const tz = fields['tz']
  if (tz !== undefined && (typeof tz !== 'string' || cron === undefined || !isTimeZone(tz))) throw bad('"tz" must be an IANA time zone (such as "Europe/Paris"), with "cron"')
  if (cron !== undefined) {
    if (typeof cron !== 'string' || cron.length > 256) throw bad('"cron" must be a cron expression of 5 fields (or 6, seconds first)')
    checkCron(cron, tz)
  }
  const catchUp = fields['catch_up'] ?? 'latest'
  if (catchUp !== 'latest' && catchUp !== 'all') throw bad('"catch_up" must be "latest" (one job for the occurrences missed) or "all" (one for each)')
  return { id, name, input, options: parseJobOptions(fields), cron, everyMs, tz, catchUp }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

function checkCron(cron: string, tz: unknown): void {
  const fields = cron.trim().split(/\s+/)
  if (fields.length !== 5 && fields.length !== 6) throw bad(`"cron" must have 5 fields (minute hour day month weekday) or 6 (seconds first); "${cron}" has ${fields.length}`)
  try {
    CronExpressionParser.parse(cron, { tz: (tz as string | undefined) ?? 'UTC', currentDate: new Date() }).next()
  } catch (error) {
    throw bad(`"cron" is not a cron expression: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** What occurrences are computed from: the spec's rule, and when the schedule was created (`every_ms` counts from it). */
export interface Rule {
  cron: string | null
  everyMs: number | null
  tz: string | null
  anchorAt: number
}

/** The first occurrence strictly after `afterMs`. */
export function nextAfter(rule: Rule, afterMs: number): number {
  if (rule.everyMs !== null) {
    const periods = Math.floor((afterMs - rule.anchorAt) / rule.everyMs) + 1
    return rule.anchorAt + Math.max(1, periods) * rule.everyMs
  }
  return CronExpressionParser.parse(rule.cron!, { tz: rule.tz ?? 'UTC', currentDate: new Date(afterMs) }).next().getTime()
}

/**
 * The occurrences to make now, from `nextAt` (the first not yet made) up to `now`: the latest of
 * them, or (catch-up `all`) the oldest `catchUpBatchMax`. Empty when `nextAt` is still ahead.
 */
export function occurrencesDue(rule: Rule, catchUp: CatchUp, nextAt: number, now: number): number[] {
  if (nextAt > now) return []
  if (catchUp === 'latest') return [Math.max(nextAt, latestAtOrBefore(rule, now))]
  const due = [nextAt]
  for (let at = nextAfter(rule, nextAt); at <= now && due.length < catchUpBatchMax; at = nextAfter(rule, at)) due.push(at)
  return due
}

/** The latest occurrence at or before `now` (found directly: a long outage must not cost one step per occurrence missed). */
function latestAtOrBefore(rule: Rule, now: number): number {
  if (rule.everyMs !== null) return rule.anchorAt + Math.floor((now - rule.anchorAt) / rule.everyMs) * rule.everyMs
  return CronExpressionParser.parse(rule.cron!, { tz: rule.tz ?? 'UTC', currentDate: new Date(now + 1) }).prev().getTime()
}

/** The idempotency key of the job of one occurrence. */
export function occurrenceKey(scheduleId: string, atMs: number): string {
  return `${reservedKeyPrefix}_schedule:${scheduleId}@${atMs}`
}

/** The request hash stored with an occurrence's job (a user's key can never match it: see reservedKeyPrefix). */
export function occurrenceHash(scheduleId: string, atMs: number): string {
  return createHash('sha256').update(occurrenceKey(scheduleId, atMs)).digest('hex')
}
