/**
 * `tandem jobs list|show|cancel|retry URL …`: jobs over the HTTP API of any node (a replica
 * forwards /jobs to its master). Human tables by default, the master's JSON with --json; a
 * refusal (JOB_NOT_FOUND, JOB_FINISHED…) is printed on stderr with its code and exits 1.
 */
import { Command, Option } from 'commander'
import { baseUrl, integer } from './options.ts'
import { renderTable } from './table.ts'

const jobStates = ['queued', 'running', 'completed', 'failed', 'cancelled']
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

/** A request the node refused, with its code. */
class Refusal extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

async function call(method: 'GET' | 'POST', url: string): Promise<unknown> {
  let response: Response
  try {
    response = await fetch(url, { method, headers: { accept: 'application/json' }, signal: AbortSignal.timeout(requestTimeoutMs) })
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause
    throw new Refusal('UNAVAILABLE', `${new URL(url).origin} could not be reached: ${cause instanceof Error ? cause.message : String(error)}`)
  }
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  if (!response.ok) {
    const b = (body ?? {}) as { code?: string; error?: string }
    throw new Refusal(b.code ?? `HTTP ${response.status}`, b.error ?? (text.trim() || `HTTP ${response.status}`))
  }
  return body
}

/** Runs a command: prints a refusal on stderr and sets a non-zero exit code. */
function run(action: () => Promise<void>): Promise<void> {
  return action().catch((error: unknown) => {
    if (!(error instanceof Refusal)) throw error
    process.stderr.write(`error (${error.code}): ${error.message}\n`)
    process.exitCode = 1
  })
}

function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

function jobPath(url: string, id: string, action = ''): string {
  return `${url}/jobs/${encodeURIComponent(id)}${action}`
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

async function list(url: string, flags: { state?: string; name?: string; limit: number; json?: boolean }): Promise<void> {
  const query = new URLSearchParams({ limit: String(flags.limit) })
  if (flags.state !== undefined) query.set('state', flags.state)
  if (flags.name !== undefined) query.set('name', flags.name)
  const body = (await call('GET', `${url}/jobs?${query.toString()}`)) as { jobs?: JobView[] }
  if (flags.json === true) return print(JSON.stringify(body, null, 2))
  const jobs = body.jobs ?? []
  if (jobs.length === 0) return print('no jobs')
  print(renderTable(['id', 'name', 'state', 'tasks', 'created', 'finished'], jobs.map((j) => [j.id, j.name, j.state, Array.isArray(j.tasks) ? j.tasks.length : j.tasks, j.created_at, j.finished_at ?? ''])))
}

async function show(url: string, id: string, flags: { json?: boolean }): Promise<void> {
  const job = (await call('GET', jobPath(url, id))) as JobView
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

async function act(action: keyof typeof actions, url: string, id: string, flags: { json?: boolean }): Promise<void> {
  const job = (await call('POST', jobPath(url, id, `/${action}`))) as JobView
  if (flags.json === true) return print(JSON.stringify(job, null, 2))
  print(`job ${job.id} is ${job.state}${actions[action].done} (${countsText(job)})`)
}

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('list, show, cancel and retry jobs (docs/jobs.md)')
  const json = () => new Option('--json', 'print the JSON the master answered')
  jobs
    .command('list')
    .description('list jobs, newest first')
    .argument('<url>', 'any node of the cluster', baseUrl)
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(jobStates))
    .option('--name <name>', 'only jobs of this handler')
    .option('--limit <n>', 'at most this many', integer('--limit', 1), 20)
    .addOption(json())
    .action((url: string, flags: { state?: string; name?: string; limit: number; json?: boolean }) => run(() => list(url, flags)))
  jobs
    .command('show')
    .description("show a job: its state, options and each task's state, attempts, worker and result")
    .argument('<url>', 'any node of the cluster', baseUrl)
    .argument('<id>', 'the job id (j_…)')
    .addOption(json())
    .action((url: string, id: string, flags: { json?: boolean }) => run(() => show(url, id, flags)))
  for (const action of ['cancel', 'retry'] as const) {
    jobs
      .command(action)
      .description(actions[action].description)
      .argument('<url>', 'any node of the cluster', baseUrl)
      .argument('<id>', 'the job id (j_…)')
      .addOption(json())
      .action((url: string, id: string, flags: { json?: boolean }) => run(() => act(action, url, id, flags)))
  }
  return jobs
}
