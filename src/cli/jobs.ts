/**
 * `tandem jobs list|show|cancel|retry URL …`: jobs over the HTTP API of any node (a replica
 * forwards /jobs to its master). Human tables by default, the master's JSON with --json; a
 * refusal (JOB_NOT_FOUND, JOB_FINISHED…) is printed on stderr with its code and exits 1.
 */
import { Command, Option } from 'commander'
import { runAgainstNode, withAccessOptions, type AccessFlags, type NodeAccess } from './node-access.ts'
import { integer, nodeUrl } from './options.ts'
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

function call(access: NodeAccess, method: 'GET' | 'POST', path: string): Promise<unknown> {
  return access.json(method, `${access.url}${path}`, { timeoutMs: requestTimeoutMs })
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
  const jobs = new Command('jobs').description('list, show, cancel and retry jobs (docs/jobs.md)')
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
  return jobs
}
