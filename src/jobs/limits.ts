/**
 * Flow control: how many tasks may run at once, and how many may start per period, for one
 * handler (`handler:NAME`), one group (`group:KEY`, a job's `group`), or every group that has no
 * limit of its own (`group:*`). Global across replicas: the master counts the leases it holds,
 * whichever replica runs them. The limits live in `_tandem_job_limits` (they replicate, so a new
 * master enforces them); the counts are the master's leases, and the rate windows start afresh
 * with each master.
 *
 * What `POST /jobs/limits` takes, validated here too.
 */
import { bad, integerField, refuseUnknownFields } from './job-spec.ts'
import type { Task } from './queue-model.ts'

export interface Limit {
  /** `handler:NAME`, `group:KEY`, or `group:*`. */
  scope: string
  /** Tasks running at once (leased, queued on a replica included); undefined: no bound. */
  concurrency: number | undefined
  /** At most `max` tasks start per `periodMs` (a sliding window); undefined: no bound. */
  rate: { max: number; periodMs: number } | undefined
}

export const limitsMax = 10_000
const limitFields = new Set(['handler', 'group', 'concurrency', 'rate'])
const periodMsMax = 24 * 60 * 60 * 1000

/** `{"handler": name} | {"group": key | "*"}` with `concurrency` and/or `rate: {max, period_ms}`; null removes that bound. */
export function parseLimit(body: unknown): Limit {
  const shape = '{"handler": "name"} or {"group": "key" | "*"}, with "concurrency": n and/or "rate": {"max": n, "period_ms": ms}'
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad(`the body must be a JSON object: ${shape}`)
  const fields = body as Record<string, unknown>
  refuseUnknownFields(fields, limitFields, '', shape)
  const { handler, group } = fields
  if ((handler === undefined) === (group === undefined)) throw bad(`give exactly one of "handler" and "group": ${shape}`)
  if (handler !== undefined && (typeof handler !== 'string' || !/^[A-Za-z_$][\w$]{0,127}$/.test(handler))) throw bad('"handler" must be the name of a handler')
  if (group !== undefined && (typeof group !== 'string' || group.length === 0 || group.length > 200)) throw bad('"group" must be a group key of 1 to 200 characters, or "*" for every group without a limit of its own')
  const concurrency = fields['concurrency'] === null ? undefined : integerField(fields, 'concurrency', 1, 100_000)
  let rate: Limit['rate']
  if (fields['rate'] !== undefined && fields['rate'] !== null) {
    const r = fields['rate']
    if (typeof r !== 'object' || Array.isArray(r)) throw bad('"rate" must be {"max": n, "period_ms": ms}')
    const rateFields = r as Record<string, unknown>
    const max = integerField(rateFields, 'max', 1, 1_000_000, 'rate.')
    const periodMs = integerField(rateFields, 'period_ms', 1, periodMsMax, 'rate.')
    if (max === undefined || periodMs === undefined) throw bad('"rate" must be {"max": n, "period_ms": ms}')
    rate = { max, periodMs }
  }
  if (concurrency === undefined && rate === undefined) throw bad('give "concurrency", "rate", or both (DELETE /jobs/limits/SCOPE removes a limit)')
  return { scope: handler !== undefined ? `handler:${handler}` : `group:${group as string}`, concurrency, rate }
}

/** The scopes a task counts against: its handler's, and its group's (or every group's). */
function scopesOf(task: Task, limits: ReadonlyMap<string, Limit>): string[] {
  const scopes = [`handler:${task.job.name}`]
  const group = task.job.options.group
  if (group !== undefined) scopes.push(limits.has(`group:${group}`) ? `group:${group}` : 'group:*')
  return scopes
}

export class Limits {
  private readonly byScope = new Map<string, Limit>()
  /** By scope: when its tasks started, oldest first, within its rate's period. */
  private readonly starts = new Map<string, number[]>()

  set(limit: Limit): void {
    this.byScope.set(limit.scope, limit)
  }

  delete(scope: string): boolean {
    this.starts.delete(scope)
    return this.byScope.delete(scope)
  }

  list(): Limit[] {
    return [...this.byScope.values()].sort((a, b) => (a.scope < b.scope ? -1 : 1))
  }

  get isEmpty(): boolean {
    return this.byScope.size === 0
  }

  /**
   * Whether `task` may start now, given `running` (tasks running per scope, the master's leases
   * and picks): true, or the time at which a rate allows it (Infinity: a concurrency bound,
   * which a task's end frees).
   */
  allows(task: Task, running: ReadonlyMap<string, number>, now: number): true | number {
    let retryAt = -Infinity
    for (const scope of scopesOf(task, this.byScope)) {
      const limit = this.byScope.get(scope)
      if (limit === undefined) continue
      if (limit.concurrency !== undefined && (running.get(runningKey(scope, task)) ?? 0) >= limit.concurrency) return Infinity
      if (limit.rate !== undefined) {
        const starts = this.window(runningKey(scope, task), limit.rate.periodMs, now)
        if (starts.length >= limit.rate.max) retryAt = Math.max(retryAt, starts[0]! + limit.rate.periodMs)
      }
    }
    return retryAt === -Infinity ? true : retryAt
  }

  /** `task` starts now: it counts against its scopes' rates. */
  started(task: Task, now: number): void {
    for (const scope of scopesOf(task, this.byScope)) {
      if (this.byScope.get(scope)?.rate === undefined) continue
      const key = runningKey(scope, task)
      let starts = this.starts.get(key)
      if (starts === undefined) this.starts.set(key, (starts = []))
      starts.push(now)
    }
  }

  /** The keys `task` counts under in the running map (addRunning). */
  keysOf(task: Task): string[] {
    return scopesOf(task, this.byScope).map((scope) => runningKey(scope, task))
  }

  private window(key: string, periodMs: number, now: number): number[] {
    const starts = this.starts.get(key) ?? []
    let drop = 0
    while (drop < starts.length && starts[drop]! <= now - periodMs) drop++
    if (drop > 0) starts.splice(0, drop)
    return starts
  }
}

/** `group:*` counts each group apart: its key names the task's own group. */
function runningKey(scope: string, task: Task): string {
  return scope === 'group:*' ? `group:*:${task.job.options.group ?? ''}` : scope
}
