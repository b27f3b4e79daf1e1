/**
 * `tandem jobs list|show|cancel|retry URL …` and `tandem jobs schedule|schedules|unschedule URL
 * …`: jobs and schedules over the HTTP API of any node (a replica forwards them to its master). Human tables by default, the master's JSON with --json; a
 * refusal (JOB_NOT_FOUND, JOB_FINISHED…) is printed on stderr with its code and exits 1.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { runAgainstNode, withAccessOptions, type AccessFlags, type NodeAccess } from './node-access.ts'
import { integer, nodeUrl } from './options.ts'
import { renderTable } from './table.ts'

const jobStates = ['waiting', 'queued', 'running', 'completed', 'failed', 'cancelled']
const requestTimeoutMs = 30_000

interface TaskView {
  index: number
  state: string
  attempts: number
  worker: string | null
  progress: unknown
  error: string | null
}

interface JobView {
  id: string
  name: string
  state: string
  created_at: string
  finished_at: string | null
  lsn: number
  /** A number in a list's summaries; each task in a job. */
  tasks: number | TaskView[]
  options?: unknown
  counts?: Record<string, number>
  progress?: number
  results?: unknown[]
  errors?: { index: number; error: string | null; attempts: number }[]
}

function call(access: NodeAccess, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  return access.json(method, `${access.url}${path}`, { timeoutMs: requestTimeoutMs, ...(body === undefined ? {} : { body }) })
}

interface ScheduleView {
  id: string
  name: string
  cron: string | null
  every_ms: number | null
  tz: string | null
  next_at: string
  last_at: string | null
  last_job: string | null
}

interface ScheduleFlags {
  cron?: string
  tz?: string
  everyMs?: number
  input?: string
  catchUp?: string
  json?: boolean
}

async function schedule(access: NodeAccess, id: string, name: string, flags: ScheduleFlags): Promise<void> {
  let input: unknown = null
  if (flags.input !== undefined) {
    try {
      input = JSON.parse(flags.input)
    } catch {
      throw new InvalidArgumentError(`--input must be JSON, such as '{"full": true}' or '"text"'`)
    }
  }
  const body = { id, name, input, ...(flags.cron === undefined ? {} : { cron: flags.cron }), ...(flags.tz === undefined ? {} : { tz: flags.tz }), ...(flags.everyMs === undefined ? {} : { every_ms: flags.everyMs }), ...(flags.catchUp === undefined ? {} : { catch_up: flags.catchUp }) }
  const view = (await call(access, 'POST', '/schedules', body)) as ScheduleView
  if (flags.json === true) return print(JSON.stringify(view, null, 2))
  print(`schedule ${view.id} makes a ${view.name} job ${ruleText(view)}; next at ${view.next_at}`)
}

function ruleText(view: ScheduleView): string {
  return view.cron === null ? `every ${view.every_ms} ms` : `at "${view.cron}" (${view.tz ?? 'UTC'})`
}

async function schedules(access: NodeAccess, flags: { json?: boolean }): Promise<void> {
  const body = (await call(access, 'GET', '/schedules')) as { schedules?: ScheduleView[] }
  if (flags.json === true) return print(JSON.stringify(body, null, 2))
  const all = body.schedules ?? []
  if (all.length === 0) return print('no schedules')
  print(renderTable(['id', 'handler', 'when', 'next', 'last job'], all.map((v) => [v.id, v.name, ruleText(v), v.next_at, v.last_job ?? ''])))
}

function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

function jobPath(id: string, action = ''): string {
  return `/jobs/${encodeURIComponent(id)}${action}`
}

/** A JSON value in at most `max` characters, for a table cell. */
function brief(value: unknown, max = 40): string {
  if (value === null || value === undefined) return ''
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

function percent(progress: number | undefined): string {
  return progress === undefined ? '' : `${Math.round(progress * 100)}%`
}

function countsText(job: JobView): string {
  const counts = job.counts
  if (counts === undefined) return `${Array.isArray(job.tasks) ? job.tasks.length : job.tasks} tasks`
  return ['done', 'running', 'queued', 'failed', 'dead', 'cancelled']
    .filter((state) => (counts[state] ?? 0) > 0)
    .map((state) => `${counts[state]} ${state}`)
    .join(', ')
}

async function list(access: NodeAccess, flags: { state?: string; name?: string; limit: number; json?: boolean }): Promise<void> {
  const query = new URLSearchParams({ limit: String(flags.limit) })
  if (flags.state !== undefined) query.set('state', flags.state)
  if (flags.name !== undefined) query.set('name', flags.name)
  const body = (await call(access, 'GET', `/jobs?${query.toString()}`)) as { jobs?: JobView[] }
  if (flags.json === true) return print(JSON.stringify(body, null, 2))
  const jobs = body.jobs ?? []
  if (jobs.length === 0) return print('no jobs')
  print(renderTable(['id', 'name', 'state', 'tasks', 'created', 'finished'], jobs.map((j) => [j.id, j.name, j.state, Array.isArray(j.tasks) ? j.tasks.length : j.tasks, j.created_at, j.finished_at ?? ''])))
}

async function show(access: NodeAccess, id: string, flags: { json?: boolean }): Promise<void> {
  const job = (await call(access, 'GET', jobPath(id))) as JobView
  if (flags.json === true) return print(JSON.stringify(job, null, 2))
  printJob(job)
  const tasks = Array.isArray(job.tasks) ? job.tasks : []
  print('')
  print(renderTable(['task', 'state', 'attempts', 'worker', 'progress', 'result', 'error'], tasks.map((t) => [t.index, t.state, t.attempts, t.worker ?? '', brief(t.progress), brief(job.results?.[t.index]), brief(t.error, 60)])))
}

function printJob(job: JobView): void {
  const lines: [string, string][] = [
    ['job', `${job.id} (${job.name})`],
    ['state', job.state],
    ['tasks', countsText(job)],
    ['progress', percent(job.progress)],
    ['created', job.created_at],
    ['finished', job.finished_at ?? ''],
    ['lsn', String(job.lsn)],
  ]
  if (job.options !== undefined) lines.push(['options', JSON.stringify(job.options)])
  for (const [label, value] of lines) print(`${`${label}:`.padEnd(10)}${value}`)
}

/** `cancel` and `retry`: what each asks the master, and what it says once done. */
const actions = {
  cancel: { description: 'cancel a job: its queued and running tasks stop', done: '' },
  retry: { description: 'queue the dead and cancelled tasks of a job again, with fresh attempts', done: ': its dead and cancelled tasks are queued again with fresh attempts' },
} as const

async function act(action: keyof typeof actions, access: NodeAccess, id: string, flags: { json?: boolean }): Promise<void> {
  const job = (await call(access, 'POST', jobPath(id, `/${action}`))) as JobView
  if (flags.json === true) return print(JSON.stringify(job, null, 2))
  print(`job ${job.id} is ${job.state}${actions[action].done} (${countsText(job)})`)
}

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('list, show, cancel and retry jobs, and schedule them (docs/jobs.md)')
  const json = () => new Option('--json', 'print the JSON the master answered')
  const listCommand = jobs
    .command('list')
    .description('list jobs, newest first')
    .argument('<url>', 'any node of the cluster', nodeUrl)
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(jobStates))
    .option('--name <name>', 'only jobs of this handler')
    .option('--limit <n>', 'at most this many', integer('--limit', 1), 20)
    .addOption(json())
  withAccessOptions(listCommand).action((url: string, flags: AccessFlags & { state?: string; name?: string; limit: number; json?: boolean }) => runAgainstNode(url, flags, (access) => list(access, flags)))
  const showCommand = jobs
    .command('show')
    .description("show a job: its state, options and each task's state, attempts, worker and result")
    .argument('<url>', 'any node of the cluster', nodeUrl)
    .argument('<id>', 'the job id (j_…)')
    .addOption(json())
  withAccessOptions(showCommand).action((url: string, id: string, flags: AccessFlags & { json?: boolean }) => runAgainstNode(url, flags, (access) => show(access, id, flags)))
  for (const action of ['cancel', 'retry'] as const) {
    const actionCommand = jobs
      .command(action)
      .description(actions[action].description)
      .argument('<url>', 'any node of the cluster', nodeUrl)
      .argument('<id>', 'the job id (j_…)')
      .addOption(json())
    withAccessOptions(actionCommand).action((url: string, id: string, flags: AccessFlags & { json?: boolean }) => runAgainstNode(url, flags, (access) => act(action, access, id, flags)))
  }
  const scheduleCommand = jobs
    .command('schedule')
    .description('create or replace a schedule: one job of the handler per occurrence, made once, across failovers')
    .argument('<url>', 'any node of the cluster', nodeUrl)
    .argument('<id>', 'the schedule id: letters, digits and _ . : -')
    .argument('<name>', 'the handler each occurrence runs')
    .option('--cron <expression>', 'a cron expression (5 fields, or 6 with seconds first)')
    .option('--tz <zone>', 'the IANA time zone of --cron (default UTC)')
    .option('--every-ms <ms>', 'an occurrence every this long (at least 1000)', integer('--every-ms', 1000))
    .option('--input <json>', 'the input of every job (JSON)')
    .addOption(new Option('--catch-up <policy>', 'after a time without a master: one job (latest) or one per missed occurrence (all)').choices(['latest', 'all']))
    .addOption(json())
  withAccessOptions(scheduleCommand).action((url: string, id: string, name: string, flags: AccessFlags & ScheduleFlags) => runAgainstNode(url, flags, (access) => schedule(access, id, name, flags)))
  const schedulesCommand = jobs.command('schedules').description('list the schedules').argument('<url>', 'any node of the cluster', nodeUrl).addOption(json())
  withAccessOptions(schedulesCommand).action((url: string, flags: AccessFlags & { json?: boolean }) => runAgainstNode(url, flags, (access) => schedules(access, flags)))
  const unscheduleCommand = jobs.command('unschedule').description('delete a schedule (the jobs it made stay)').argument('<url>', 'any node of the cluster', nodeUrl).argument('<id>', 'the schedule id')
  withAccessOptions(unscheduleCommand).action((url: string, id: string, flags: AccessFlags) =>
    runAgainstNode(url, flags, async (access) => {
      await call(access, 'DELETE', `/schedules/${encodeURIComponent(id)}`)
      print(`schedule ${id} deleted`)
    }),
  )
  return jobs
}
