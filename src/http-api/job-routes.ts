/**
 * The jobs API (docs/jobs.md): submit, read, wait for, stream, cancel and retry jobs, and the
 * schedules that submit them. Every route needs the master's queue; a replica forwards the
 * request (or redirects with `redirect`). Permission: `jobs` (gate.ts), for both.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { TandemError } from '../shared/errors.ts'
import { jobStates, parseJobSpec, parseLimit, parseScheduleSpec, type JobEvent, type Limit } from '../jobs/index.ts'
import type { NodeApi } from './node-api.ts'
import { duration, parseQueryParams, type QueryParams } from './query-params.ts'

type Query = Record<string, string | string[] | undefined>

export interface JobRouteHelpers {
  toMaster: (request: FastifyRequest, reply: FastifyReply, params: QueryParams) => Promise<FastifyReply> | FastifyReply
  sendJson: (reply: FastifyReply, body: unknown, params?: QueryParams) => FastifyReply
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => unknown

/** The part of the fastify app the routes use. */
export interface Router {
  get(url: string, handler: Handler): unknown
  post(url: string, handler: Handler): unknown
  delete(url: string, handler: Handler): unknown
}

const waitMsMax = 60_000
const listLimitMax = 1000
const eventHeartbeatMs = 10_000

export function registerJobRoutes(app: Router, node: NodeApi, { toMaster, sendJson }: JobRouteHelpers): void {
  /** Runs `handler` on the master; a replica hands the request over. */
  const onMaster = (handler: (request: FastifyRequest, reply: FastifyReply, params: QueryParams) => unknown) => (request: FastifyRequest, reply: FastifyReply) => {
    const params = parseQueryParams(request.query as Query)
    if (node.role !== 'master') return toMaster(request, reply, params)
    return handler(request, reply, params)
  }
  const idOf = (request: FastifyRequest) => (request.params as { id: string }).id
  const jobOrThrow = (id: string) => {
    const job = node.jobs().get(id)
    if (job === undefined) throw new TandemError('JOB_NOT_FOUND', `no job ${id} (it may have passed its retention)`)
    return job
  }

  app.post(
    '/jobs',
    onMaster(async (request, reply, params) => {
      let body: unknown
      try {
        body = JSON.parse(typeof request.body === 'string' ? request.body : '')
      } catch {
        throw new TandemError('BAD_REQUEST', 'the body must be JSON: {"name": "handler", "input": …} or {"name": "handler", "inputs": […]}')
      }
      const outcome = await node.jobs().submit(parseJobSpec(body))
      // 201 only for a job this request created; a replay, a dedupe or a debounce answers the job it found.
      reply.status(outcome.replayed || outcome.deduplicated === true || outcome.debounced === true ? 200 : 201).header('x-tandem-lsn', String(outcome.lsn))
      return sendJson(reply, outcome, params)
    }),
  )

  app.get(
    '/jobs',
    onMaster((request, reply, params) => {
      const query = request.query as Query
      const text = (name: string) => {
        const value = query[name]
        return Array.isArray(value) ? value[0] : value
      }
      const state = text('state')
      if (state !== undefined && !(jobStates as readonly string[]).includes(state)) throw new TandemError('BAD_REQUEST', `state must be one of ${jobStates.join(', ')}`)
      const limitText = text('limit') ?? '100'
      const limit = Number(limitText)
      if (!Number.isInteger(limit) || limit < 1 || limit > listLimitMax) throw new TandemError('BAD_REQUEST', `limit must be an integer from 1 to ${listLimitMax}`)
      const filter: { state?: string; name?: string; limit: number; before?: string } = { limit }
      if (state !== undefined) filter.state = state
      const name = text('name')
      if (name !== undefined) filter.name = name
      const before = text('before')
      if (before !== undefined) filter.before = before
      return sendJson(reply, { jobs: node.jobs().list(filter) }, params)
    }),
  )

  app.get('/jobs/:id', onMaster((request, reply, params) => sendJson(reply, jobOrThrow(idOf(request)), params)))

  app.get(
    '/jobs/:id/wait',
    onMaster(async (request, reply, params) => {
      const id = idOf(request)
      const timeoutText = (request.query as Query)['timeout']
      const timeoutMs = Math.min(waitMsMax, duration('timeout', Array.isArray(timeoutText) ? timeoutText[0] : timeoutText) ?? 30_000)
      const finished = await node.jobs().waitFinished(id, timeoutMs)
      return sendJson(reply.status(finished ? 200 : 202), jobOrThrow(id), params)
    }),
  )

  app.get(
    '/jobs/:id/events',
    onMaster((request, reply) => {
      const id = idOf(request)
      const job = jobOrThrow(id)
      const jobs = node.jobs()
      reply.hijack()
      const out = reply.raw
      out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-tandem-epoch': String(node.epoch()) })
      const write = (e: JobEvent) => out.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`)
      // The state as it stands first, so a watcher never misses how the job began.
      write({ event: 'job', data: { job: id, state: job.state } })
      if (job.finished_at !== null) {
        out.end()
        return
      }
      const heartbeat = setInterval(() => out.write(': keep-alive\n\n'), eventHeartbeatMs)
      const unsubscribe = jobs.subscribe(id, (e) => {
        write(e)
        if (e.event === 'job' && (e.data.state === 'completed' || e.data.state === 'failed' || e.data.state === 'cancelled')) close()
      })
      const close = () => {
        clearInterval(heartbeat)
        unsubscribe()
        out.end()
      }
      request.raw.on('close', close)
    }),
  )

  const bodyOf = (request: FastifyRequest, shape: string): unknown => {
    try {
      return JSON.parse(typeof request.body === 'string' ? request.body : '')
    } catch {
      throw new TandemError('BAD_REQUEST', `the body must be JSON: ${shape}`)
    }
  }

  const limitView = (limit: Limit) => ({ scope: limit.scope, concurrency: limit.concurrency ?? null, rate: limit.rate === undefined ? null : { max: limit.rate.max, period_ms: limit.rate.periodMs } })
  app.post(
    '/jobs/limits',
    onMaster(async (request, reply, params) => {
      const limit = parseLimit(bodyOf(request, '{"group": "tenant-42", "concurrency": 2, "rate": {"max": 10, "period_ms": 1000}}'))
      const lsn = await node.jobs().limits.set(limit)
      return sendJson(reply.header('x-tandem-lsn', String(lsn)), limitView(limit), params)
    }),
  )
  app.get('/jobs/limits', onMaster((_request, reply, params) => sendJson(reply, { limits: node.jobs().limits.list().map(limitView) }, params)))
  app.delete(
    '/jobs/limits/:scope',
    onMaster(async (request, reply, params) => {
      const { scope } = request.params as { scope: string }
      const lsn = await node.jobs().limits.remove(scope)
      return sendJson(reply.header('x-tandem-lsn', String(lsn)), { scope, deleted: true }, params)
    }),
  )

  app.post(
    '/schedules',
    onMaster(async (request, reply, params) => {
      const spec = parseScheduleSpec(bodyOf(request, '{"id": "nightly", "name": "handler", "cron": "0 3 * * *", "input": …}'))
      const { schedule, created, lsn } = await node.jobs().schedules.upsert(spec)
      return sendJson(reply.status(created ? 201 : 200).header('x-tandem-lsn', String(lsn)), schedule, params)
    }),
  )
  app.get('/schedules', onMaster((_request, reply, params) => sendJson(reply, { schedules: node.jobs().schedules.list() }, params)))
  app.get(
    '/schedules/:id',
    onMaster((request, reply, params) => {
      const schedule = node.jobs().schedules.get(idOf(request))
      if (schedule === undefined) throw new TandemError('SCHEDULE_NOT_FOUND', `no schedule ${idOf(request)}`)
      return sendJson(reply, schedule, params)
    }),
  )
  app.delete(
    '/schedules/:id',
    onMaster(async (request, reply, params) => {
      const lsn = await node.jobs().schedules.remove(idOf(request))
      return sendJson(reply.header('x-tandem-lsn', String(lsn)), { id: idOf(request), deleted: true }, params)
    }),
  )

  // Both answer with the job as it stands afterwards.
  for (const action of ['cancel', 'retry'] as const) {
    app.post(
      `/jobs/:id/${action}`,
      onMaster(async (request, reply, params) => {
        const id = idOf(request)
        await node.jobs()[action](id)
        return sendJson(reply, jobOrThrow(id), params)
      }),
    )
  }
}
