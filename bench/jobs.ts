/**
 * Jobs: what moving a task through the cluster costs. A master and two replicas, each running
 * `--jobs noop-handlers.mjs --concurrency 4` (four tasks at once on its default threads, one per
 * core), and a handler that does nothing
 * (`async function noop(input) { return input }`), so every figure is the queue's own cost.
 * The handlers module and the baseline's thread are written as source into the run's temporary
 * directory (as http-floor.ts does): plain JavaScript there is what a replica imports, and no
 * .js file in bench/ sits outside the type-checked lint.
 *
 * Back-of-envelope estimate, from the costs of its parts (2 cores shared by the three nodes and the
 * benchmark, synchronous=full):
 *
 * - A task is two durable transitions on the master — its lease, then its result — each an
 *   internal write through the write pipeline (a savepoint, an UPDATE or two, the log append),
 *   replicated to both replicas, which apply it with an fsync of their own. The master hands a
 *   replica a new task only when a slot frees, i.e. after the previous result's write commits,
 *   and then leases it in a second write: one slot turns over in ~2 commits (~0.5–1 ms each) +
 *   a WebSocket hop each way + a postMessage round trip ≈ 2–4 ms. With 8 slots: ~2–4k tasks/s,
 *   bounded by that cycle more than by CPU. A plain pool of 8 worker threads doing postMessage
 *   round trips in one process: ~100–300k tasks/s (a round trip costs ~10–30 µs of CPU, spread
 *   over 2 cores), so the cluster runs at ~1–2 % of it. Raw SQLite's one-row transactions
 *   (~5–8k/s) are the floor of one durable transition; group commit puts several tasks'
 *   transitions in one entry, so the cluster should land at ~0.3–0.6× of that rate.
 * - Latency of one single-task job, submit → result: POST /jobs (one write, ~0.7 ms like a
 *   one-row INSERT), the lease write (~0.5 ms), assign → the replica's thread → result back
 *   (~0.3–0.5 ms), the result's write (~0.5 ms), then GET /jobs/:id/wait answering (~0.2 ms,
 *   sent right after the submit, so it overlaps): ~2.5–4 ms, 4–6 one-row writes' worth.
 * - Per task, against awaiting the same handler in-process (~0.05 µs: a resolved promise): the
 *   cluster's ~300–500 µs per task (1 ÷ rate) is all overhead.
 *
 * Method: every repetition runs, back to back, the worker-pool baseline, the in-process loop,
 * raw SQLite's one-row transactions, then one fan-out job of `fanOutTasks` no-op tasks (timed
 * from the POST until GET /jobs/:id/wait answers `completed`; every result is checked), then
 * `latencyJobs` one-row writes and as many single-task jobs, one at a time, over one keep-alive
 * undici pool on the master. The master's own timestamps (created_at, started_at, finished_at,
 * ms resolution) split a job's latency into its phases.
 *
 * Where the time went in the first runs (--cpu-prof of each node over three fan-outs): the
 * master's main thread was busy ~80 % of the fan-out, half of that inside COMMIT (with
 * synchronous=full the fsync blocks its event loop) and ~15 % writing frames to the replicas; a
 * replica's main thread ~50 %, nearly all applying entries with their fsync, during which an
 * assignment or a result waits; the handler threads ~2 %. At ~0.3 log entries per task every
 * entry costs an fsync on all three nodes. With --concurrency 16 the same fan-out ran ~1.9×
 * faster at 0.09 entries per task: more slots put more transitions in each commit.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { Pool } from 'undici'
import { waitFor } from '../tests/harness/cluster.ts'
import { execute, rows } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { waitForLsn } from './bench-cluster.ts'
import { redisMissing, redisServerPath, startBullmq, type Bullmq } from './bullmq.ts'
import { processCpuSeconds } from './cpu.ts'
import { rawSingleRowTps } from './raw-sqlite.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { percentile, spread } from './stats.ts'
import { createTableSql, insertOneBody } from './workload.ts'

export interface JobsSettings {
  reps: number
  replicas: number
  /** Tasks each replica runs at once (`--concurrency`), on its default threads (one per core). */
  concurrency: number
  /** Tasks in each fan-out job. */
  fanOutTasks: number
  /** Single-task jobs per latency run, submitted one at a time (and as many one-row writes). */
  latencyJobs: number
  /** Each raw SQLite run. */
  rawMs: number
}

export interface FanOutRun {
  tasksPerSec: number
  usPerTask: number
  /** POST /jobs alone: storing the job and its task rows, one transaction. */
  submitMs: number
  /** Log entries written during the fan-out, per task (group commit shares entries). */
  entriesPerTask: number
  /** CPU the master and replicas used during the fan-out, in cores (undefined without /proc). */
  clusterCores: number | undefined
}

export interface LatencyRun {
  jobP50Ms: number
  jobP99Ms: number
  writeP50Ms: number
  writeP99Ms: number
  /** By the master's clock (see jobPhases): created_at → the lease write's start. */
  submitToLeaseMs: number
  /** started_at → the result reaching the master (finished_at). */
  leaseToResultMs: number
  /** The rest of the client's latency: the result's write, HTTP both ways, the wait's answer. */
  restMs: number
}

export interface JobsSamples {
  fanOut: FanOutRun[]
  poolTasksPerSec: number[]
  inProcessUsPerCall: number[]
  rawSingleTps: number[]
  latency: LatencyRun[]
  /** The same fan-out and latency on BullMQ + Redis (AOF always), or why it was not run. */
  bullmq: { redis: string; bullmq: string; tasksPerSec: number[]; p50Ms: number[]; p99Ms: number[] } | { skipped: string }
}

interface JobBody {
  id: string
  state: string
  counts: { total: number; done: number }
  results: unknown[]
}

const handlerName = 'noop'

/** The handlers module: every exported async function is a handler, by its export name. */
const handlersSource = `// Does nothing but hand its input back: what remains is the cost of moving a task.
export async function ${handlerName}(input) {
  return input
}
`

/**
 * One thread of the worker_threads baseline: what a replica's task thread does per task (JSON
 * text in, the handler awaited, JSON text out), minus the database and the abort signal.
 *   main → worker   {id, input}                            input: JSON text
 *   worker → main   {ready: true} once, then {id, value}   value: JSON text
 */
const poolWorkerSource = `import { parentPort, workerData } from 'node:worker_threads'
const handler = (await import(workerData.moduleUrl))[workerData.name]
parentPort.on('message', async ({ id, input }) => {
  const value = await handler(JSON.parse(input))
  parentPort.postMessage({ id, value: JSON.stringify(value ?? null) })
})
parentPort.postMessage({ ready: true })
`

interface Code {
  handlersPath: string
  handlersUrl: string
  poolWorkerUrl: URL
}

/** Writes the handlers module and the pool's thread under the run's root (.mjs: ES modules wherever they are). */
function writeCode(resources: Resources): Code {
  const dir = resources.path('jobs-code')
  mkdirSync(dir, { recursive: true })
  const handlersPath = resources.path('jobs-code', 'noop-handlers.mjs')
  const poolWorkerPath = resources.path('jobs-code', 'pool-worker.mjs')
  writeFileSync(handlersPath, handlersSource)
  writeFileSync(poolWorkerPath, poolWorkerSource)
  return { handlersPath, handlersUrl: pathToFileURL(handlersPath).href, poolWorkerUrl: pathToFileURL(poolWorkerPath) }
}

/** Longest a job may take before the bench gives up on it. */
const jobTimeoutMs = 120_000
const inProcessCalls = 200_000

export async function measureJobs(resources: Resources, s: JobsSettings, log: (line: string) => void): Promise<JobsSamples> {
  const slots = s.replicas * s.concurrency
  const code = writeCode(resources)
  const nodes = await startJobsCluster(resources, s, code)
  const [master] = nodes
  const http = new Pool(master.url, { connections: 2, headersTimeout: jobTimeoutMs, bodyTimeout: jobTimeoutMs })
  const threads = await startThreadPool(slots, code)
  const { noop } = (await import(code.handlersUrl)) as { noop: (input: unknown) => Promise<unknown> }
  let bullmq: Bullmq | undefined
  try {
    if (redisServerPath !== undefined) bullmq = await startBullmq(resources, { workers: s.replicas, concurrency: s.concurrency })
    // A full-size fan-out: a first run left a short warm-up ~30 % slower than the runs after it.
    log(`[jobs] warming up: a fan-out of ${fmt(s.fanOutTasks)} tasks, 100 single-task jobs, 100 writes`)
    await fanOut(http, nodes, s.fanOutTasks)
    await latencyRun(http, master.url, 100)
    await threads.run(s.fanOutTasks)
    await inProcessUsPerCall(noop, inProcessCalls)
    rawSingleRowTps(resources.path('jobs-raw-warmup'), 200)
    if (bullmq !== undefined) {
      log(`[jobs] BullMQ ${bullmq.bullmqVersion} on Redis ${bullmq.redisVersion} (appendfsync always), ${s.replicas} worker processes × concurrency ${s.concurrency}: warming up the same way`)
      await bullmq.fanOut(s.fanOutTasks)
      await bullmq.latency(100)
    } else log(`[jobs] ${redisMissing}`)

    const compared = bullmq === undefined ? undefined : { redis: bullmq.redisVersion, bullmq: bullmq.bullmqVersion, tasksPerSec: [] as number[], p50Ms: [] as number[], p99Ms: [] as number[] }
    const out: JobsSamples = { fanOut: [], poolTasksPerSec: [], inProcessUsPerCall: [], rawSingleTps: [], latency: [], bullmq: compared ?? { skipped: redisMissing } }
    for (let rep = 1; rep <= s.reps; rep++) {
      const tag = `[jobs ${rep}/${s.reps}]`
      out.poolTasksPerSec.push(await threads.run(s.fanOutTasks))
      log(`${tag} ${slots} worker threads in this process: ${fmt(out.poolTasksPerSec.at(-1)!)} tasks/s`)
      out.inProcessUsPerCall.push(await inProcessUsPerCall(noop, inProcessCalls))
      log(`${tag} handler awaited in-process: ${out.inProcessUsPerCall.at(-1)!.toFixed(3)} µs per call`)
      out.rawSingleTps.push(rawSingleRowTps(resources.path('jobs-raw'), s.rawMs))
      log(`${tag} raw SQLite, 1 row per transaction: ${fmt(out.rawSingleTps.at(-1)!)} tx/s`)
      const run = await fanOut(http, nodes, s.fanOutTasks)
      out.fanOut.push(run)
      const cores = run.clusterCores === undefined ? '' : `, the nodes used ${run.clusterCores.toFixed(2)} cores`
      log(
        `${tag} fan-out of ${fmt(s.fanOutTasks)} no-op tasks: ${fmt(run.tasksPerSec)} tasks/s (${run.usPerTask.toFixed(0)} µs per task; ` +
          `submit ${run.submitMs.toFixed(0)} ms, ${run.entriesPerTask.toFixed(2)} log entries per task${cores})`,
      )
      const latency = await latencyRun(http, master.url, s.latencyJobs)
      out.latency.push(latency)
      log(
        `${tag} ${s.latencyJobs} single-task jobs: p50 ${latency.jobP50Ms.toFixed(2)} ms, p99 ${latency.jobP99Ms.toFixed(2)} ms ` +
          `(submit → lease ${latency.submitToLeaseMs.toFixed(2)} ms, lease → result ${latency.leaseToResultMs.toFixed(2)} ms, rest ${latency.restMs.toFixed(2)} ms); ` +
          `one-row writes p50 ${latency.writeP50Ms.toFixed(2)} ms, p99 ${latency.writeP99Ms.toFixed(2)} ms`,
      )
      if (bullmq !== undefined && compared !== undefined) {
        compared.tasksPerSec.push(await bullmq.fanOut(s.fanOutTasks))
        const single = await bullmq.latency(s.latencyJobs)
        compared.p50Ms.push(single.p50Ms)
        compared.p99Ms.push(single.p99Ms)
        log(`${tag} BullMQ: fan-out of ${fmt(s.fanOutTasks)} no-op jobs ${fmt(compared.tasksPerSec.at(-1)!)} tasks/s; ${s.latencyJobs} single jobs p50 ${single.p50Ms.toFixed(2)} ms, p99 ${single.p99Ms.toFixed(2)} ms`)
      }
    }
    return out
  } finally {
    await bullmq?.stop()
    await http.close()
    await threads.close()
    // Off the CPU before anything else runs; `resources` would kill them at the end anyway.
    await Promise.all(nodes.map((node) => node.kill('SIGKILL')))
  }
}

/** A master, then replicas that run the no-op handlers, each registered with the master. */
async function startJobsCluster(resources: Resources, s: JobsSettings, code: Code): Promise<[NodeProcess, ...NodeProcess[]]> {
  const master = resources.node(await NodeProcess.start({ role: 'master', dataDir: resources.path('jobs', 'master'), args: ['--synchronous', 'full'] }))
  const jobsArgs = ['--synchronous', 'full', '--jobs', code.handlersPath, '--concurrency', String(s.concurrency)]
  const replicas: NodeProcess[] = []
  for (let i = 1; i <= s.replicas; i++) {
    replicas.push(resources.node(await NodeProcess.start({ role: 'replica', dataDir: resources.path('jobs', `replica${i}`), masterUrl: master.url, args: jobsArgs })))
  }
  const created = await execute(master.url, [createTableSql])
  if (created.status !== 200) throw new Error(`creating the bench table failed: HTTP ${created.status} ${JSON.stringify(created.body)}`)
  await Promise.all(replicas.map((r) => waitForLsn(r.url, created.body.lsn)))
  await waitFor(
    async () => {
      const status = (await (await fetch(`${master.url}/status`, { signal: AbortSignal.timeout(5000) })).json()) as { jobs?: { workers?: { connected: boolean; handlers: string[] }[] } }
      const workers = status.jobs?.workers?.filter((w) => w.connected && w.handlers.includes(handlerName)) ?? []
      return workers.length === s.replicas ? true : undefined
    },
    20_000,
    () => `${s.replicas} replicas registered with the master to run ${handlerName}`,
  )
  return [master, ...replicas]
}

async function request(http: Pool, method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; body: unknown }> {
  const response = await http.request({ method, path, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) })
  return { status: response.statusCode, body: await response.body.json() }
}

/** POST /jobs; resolves with the job's id once the master has stored it. */
async function submit(http: Pool, body: string): Promise<string> {
  const answer = await request(http, 'POST', '/jobs', body)
  const id = (answer.body as { id?: unknown }).id
  if (answer.status !== 201 || typeof id !== 'string') throw new Error(`POST /jobs answered HTTP ${answer.status}: ${JSON.stringify(answer.body)}`)
  return id
}

/** GET /jobs/:id/wait until the job is finished; throws unless it completed. */
async function waitCompleted(http: Pool, id: string): Promise<JobBody> {
  const deadline = performance.now() + jobTimeoutMs
  for (;;) {
    const answer = await request(http, 'GET', `/jobs/${id}/wait?timeout=60s`)
    const job = answer.body as JobBody
    if (answer.status === 200) {
      if (job.state !== 'completed') throw new Error(`job ${id} finished ${job.state}: ${JSON.stringify(job).slice(0, 2000)}`)
      return job
    }
    if (answer.status !== 202 || performance.now() > deadline) throw new Error(`job ${id} did not finish: HTTP ${answer.status} ${JSON.stringify(job).slice(0, 2000)}`)
  }
}

async function masterLsn(http: Pool): Promise<number> {
  const answer = await request(http, 'GET', '/status')
  const lsn = (answer.body as { position?: { lsn?: unknown } }).position?.lsn
  if (answer.status !== 200 || typeof lsn !== 'number') throw new Error(`GET /status answered HTTP ${answer.status}: ${JSON.stringify(answer.body)}`)
  return lsn
}

/** One job of `tasks` no-op tasks (inputs 0…tasks−1), from the POST to `completed`. */
async function fanOut(http: Pool, nodes: readonly NodeProcess[], tasks: number): Promise<FanOutRun> {
  const body = JSON.stringify({ name: handlerName, inputs: Array.from({ length: tasks }, (_, i) => i) })
  const pids = nodes.map((node) => node.child?.pid)
  const lsnBefore = await masterLsn(http)
  const cpuBefore = processCpuSeconds(pids)
  const started = performance.now()
  const id = await submit(http, body)
  const submitMs = performance.now() - started
  const job = await waitCompleted(http, id)
  const elapsedMs = performance.now() - started
  const cpuAfter = processCpuSeconds(pids)
  const lsnAfter = await masterLsn(http)
  if (job.counts.done !== tasks || job.results.length !== tasks || job.results.some((value, i) => value !== i)) {
    throw new Error(`job ${id} completed but its results are not its inputs: counts ${JSON.stringify(job.counts)}`)
  }
  return {
    tasksPerSec: tasks / (elapsedMs / 1000),
    usPerTask: (elapsedMs * 1000) / tasks,
    submitMs,
    entriesPerTask: (lsnAfter - lsnBefore) / tasks,
    clusterCores: cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / (elapsedMs / 1000),
  }
}

/** `count` one-row writes, then `count` single-task jobs, each sent when the previous answered. */
async function latencyRun(http: Pool, masterUrl: string, count: number): Promise<LatencyRun> {
  const writes: number[] = []
  for (let i = 0; i < count; i++) {
    const sent = performance.now()
    const answer = await request(http, 'POST', '/db/execute', insertOneBody)
    writes.push(performance.now() - sent)
    if (answer.status !== 200) throw new Error(`a write answered HTTP ${answer.status}: ${JSON.stringify(answer.body)}`)
  }
  const jobs = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const sent = performance.now()
    const id = await submit(http, JSON.stringify({ name: handlerName, input: i }))
    const job = await waitCompleted(http, id)
    jobs.set(id, performance.now() - sent)
    if (job.results[0] !== i) throw new Error(`job ${id} answered ${JSON.stringify(job.results)} for input ${i}`)
  }
  const phases = await jobPhases(masterUrl, jobs)
  const latencies = [...jobs.values()].sort((a, b) => a - b)
  writes.sort((a, b) => a - b)
  return {
    jobP50Ms: percentile(latencies, 50),
    jobP99Ms: percentile(latencies, 99),
    writeP50Ms: percentile(writes, 50),
    writeP99Ms: percentile(writes, 99),
    ...phases,
  }
}

/**
 * Where the jobs' time went, by the master's clock. Its timestamps are whole ms, so a median
 * would say 1 or 2; a mean averages the rounding out. It is taken over the 90 % fastest jobs:
 * a few stalled behind a slow fsync would otherwise stand for all of them.
 */
async function jobPhases(masterUrl: string, latencies: ReadonlyMap<string, number>): Promise<Pick<LatencyRun, 'submitToLeaseMs' | 'leaseToResultMs' | 'restMs'>> {
  const ids = [...latencies.keys()].sort()
  // Job ids are `j_` + base-36 time + hex: safe to inline, and sortable, so a range selects them.
  const found = (await rows(
    masterUrl,
    `SELECT j.id, j.created_at, t.started_at, t.finished_at FROM _tandem_jobs j JOIN _tandem_tasks t ON t.job_id = j.id ` +
      `WHERE j.id BETWEEN '${ids[0]}' AND '${ids.at(-1)}' AND j.task_count = 1`,
  )) as [string, number, number, number][]
  const mine = found.filter(([id]) => latencies.has(id))
  if (mine.length !== latencies.size) throw new Error(`found ${mine.length} of ${latencies.size} jobs in _tandem_jobs`)
  const p90 = percentile([...latencies.values()].sort((a, b) => a - b), 90)
  const fastest = mine.filter(([id]) => latencies.get(id)! <= p90)
  const mean = (pick: (row: [string, number, number, number]) => number) => fastest.reduce((sum, row) => sum + pick(row), 0) / fastest.length
  return {
    submitToLeaseMs: mean(([, created, started]) => started - created),
    leaseToResultMs: mean(([, , started, finished]) => finished - started),
    restMs: mean(([id, created, , finished]) => latencies.get(id)! - (finished - created)),
  }
}

interface ThreadPool {
  /** Runs `tasks` no-op tasks, one per thread at a time; resolves with tasks per second. */
  run(tasks: number): Promise<number>
  close(): Promise<void>
}

/** The baseline: `size` worker threads in this process, each running the handler per message. */
async function startThreadPool(size: number, code: Code): Promise<ThreadPool> {
  // execArgv: [] keeps tsx out of the threads: they run plain JavaScript, as a replica's do.
  const workers = Array.from({ length: size }, () => new Worker(code.poolWorkerUrl, { workerData: { moduleUrl: code.handlersUrl, name: handlerName }, execArgv: [] }))
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve())
          worker.once('error', reject)
        }),
    ),
  )
  return {
    run: (tasks) =>
      new Promise<number>((resolve, reject) => {
        let sent = 0
        let done = 0
        const started = performance.now()
        const listeners = workers.map((worker) => {
          const listener = (message: { id: number; value: string }) => {
            if (message.value !== String(message.id)) {
              finish(new Error(`the pool answered ${message.value} for input ${message.id}`))
              return
            }
            if (++done === tasks) finish(undefined)
            else if (sent < tasks) worker.postMessage({ id: sent, input: String(sent++) })
          }
          worker.on('message', listener)
          return listener
        })
        const finish = (error: Error | undefined) => {
          workers.forEach((worker, i) => worker.off('message', listeners[i]!))
          if (error === undefined) resolve(tasks / ((performance.now() - started) / 1000))
          else reject(error)
        }
        for (const worker of workers) if (sent < tasks) worker.postMessage({ id: sent, input: String(sent++) })
      }),
    close: async () => {
      await Promise.all(workers.map((worker) => worker.terminate()))
    },
  }
}

/** The handler awaited in a loop in this process: µs per call. */
async function inProcessUsPerCall(noop: (input: unknown) => Promise<unknown>, calls: number): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < calls; i++) {
    if ((await noop(i)) !== i) throw new Error('the handler did not return its input')
  }
  return ((performance.now() - started) * 1000) / calls
}

const fmt = (value: number) => Math.round(value).toLocaleString('en-US')

export function jobsFigures(j: JobsSamples, s: JobsSettings): Figure[] {
  const slots = s.replicas * s.concurrency
  const poolLabel = `the same handler on ${slots} worker threads in one process`
  const latency = (pick: (run: LatencyRun) => number) => j.latency.map(pick)
  return [
    figure('jobs_tasks', `Jobs: no-op tasks, one fan-out of ${fmt(s.fanOutTasks)} over ${s.replicas} replicas × ${s.concurrency} slots`, 'tasks/s', j.fanOut.map((r) => r.tasksPerSec), [
      { label: poolLabel, unit: 'tasks/s', samples: j.poolTasksPerSec },
      { label: 'raw SQLite, 1 row per transaction', unit: 'tx/s', samples: j.rawSingleTps },
    ]),
    figure('jobs_latency_p50', 'Job latency p50, submit → result, single-task jobs one at a time', 'ms', latency((r) => r.jobP50Ms), [
      { label: 'HTTP write latency p50 (one-row INSERT), same client', unit: 'ms', samples: latency((r) => r.writeP50Ms) },
    ]),
    figure('jobs_latency_p99', 'Job latency p99, submit → result, single-task jobs one at a time', 'ms', latency((r) => r.jobP99Ms), [
      { label: 'HTTP write latency p99 (one-row INSERT), same client', unit: 'ms', samples: latency((r) => r.writeP99Ms) },
    ]),
    ...('skipped' in j.bullmq
      ? []
      : [
          figure('jobs_vs_bullmq_fan_out', `Jobs: a fan-out of ${fmt(s.fanOutTasks)} no-op tasks, ${s.replicas} replicas × ${s.concurrency} slots`, 'tasks/s', j.fanOut.map((r) => r.tasksPerSec), [
            { label: `BullMQ ${j.bullmq.bullmq} on Redis ${j.bullmq.redis} (AOF fsync always): addBulk of as many no-op jobs, ${s.replicas} worker processes × concurrency ${s.concurrency}`, unit: 'tasks/s', samples: j.bullmq.tasksPerSec },
          ]),
          figure('jobs_vs_bullmq_latency_p50', 'Job latency p50, submit → result, single-task jobs one at a time', 'ms', latency((r) => r.jobP50Ms), [
            { label: `BullMQ ${j.bullmq.bullmq}: add → waitUntilFinished, one job at a time`, unit: 'ms', samples: j.bullmq.p50Ms },
          ]),
        ]),
    figure('jobs_task_us', 'Jobs: time per no-op task in the fan-out (1 ÷ rate)', 'µs', j.fanOut.map((r) => r.usPerTask), [
      { label: 'the same handler awaited in-process, per call', unit: 'µs', samples: j.inProcessUsPerCall },
      { label: `the same handler on ${slots} worker threads, per task (1 ÷ rate)`, unit: 'µs', samples: j.poolTasksPerSec.map((perSec) => 1e6 / perSec) },
    ]),
  ]
}

export function jobsNote(j: JobsSamples, s: JobsSettings): string {
  const median = (values: number[]) => spread(values).median
  const slots = s.replicas * s.concurrency
  const cores = j.fanOut.map((r) => r.clusterCores).filter((c) => c !== undefined)
  const coresText = cores.length === 0 ? '' : ` and the three nodes used ${median(cores).toFixed(2)} cores`
  const perTask = median(j.fanOut.map((r) => r.usPerTask))
  const inProcess = median(j.inProcessUsPerCall)
  const phase = (pick: (run: LatencyRun) => number) => median(j.latency.map(pick)).toFixed(2)
  return (
    `Jobs: a master and ${s.replicas} replicas, each \`--jobs noop-handlers.mjs --concurrency ${s.concurrency}\` (its tasks on one worker thread per core) (\`async function noop(input) { return input }\`), synchronous=full. ` +
    `Fan-out: one POST /jobs of ${fmt(s.fanOutTasks)} integer inputs, timed until GET /jobs/:id/wait answers completed (every result checked); the POST took ${median(j.fanOut.map((r) => r.submitMs)).toFixed(0)} ms, ` +
    `the fan-out wrote ${median(j.fanOut.map((r) => r.entriesPerTask)).toFixed(2)} log entries per task${coresText}. ` +
    `Baselines: the handler through ${slots} worker threads in the bench process, one task per thread at a time with JSON text both ways, as a replica runs it (the cost without durability or network); ` +
    `raw SQLite's one-row transactions, the floor of one durable transition (a task takes two, its lease and its result, group-committed). ` +
    `Latency: ${s.latencyJobs} single-task jobs one at a time (POST /jobs, then GET /jobs/:id/wait) beside as many one-row POST /db/execute writes, one keep-alive undici pool on the master; ` +
    `by the master's clock (means over the 90 % fastest) a job spends ${phase((r) => r.submitToLeaseMs)} ms from submit to its lease, ${phase((r) => r.leaseToResultMs)} ms from lease to its result arriving, ${phase((r) => r.restMs)} ms in the rest (the result's write, HTTP both ways). ` +
    `Overhead per task: ${perTask.toFixed(0)} µs over the cluster − ${inProcess.toFixed(3)} µs awaiting the handler in-process = ${(perTask - inProcess).toFixed(0)} µs. ` +
    ('skipped' in j.bullmq
      ? j.bullmq.skipped + '.'
      : `BullMQ ${j.bullmq.bullmq} on Redis ${j.bullmq.redis} (Debian's redis-server, --appendonly yes --appendfsync always: an acknowledged job is on disk, as Tandem's are), ${s.replicas} worker processes × concurrency ${s.concurrency}, the same no-op handler: ` +
        `the fan-out is one addBulk of ${fmt(s.fanOutTasks)} jobs timed until the queue counts them all completed (every return value then checked), the latency one add → waitUntilFinished at a time; each repetition runs it right after Tandem's.`)
  )
}
