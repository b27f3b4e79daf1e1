/**
 * BullMQ on Redis, the queue most Node applications use, run beside Tandem's jobs in the same
 * run (issue 20): Debian's `redis-server` with `--appendonly yes --appendfsync always` (a job
 * Redis acknowledged is on disk, as a job Tandem acknowledged is), BullMQ from npm, and as many
 * worker processes × concurrency as Tandem has replicas × slots, each running the same no-op
 * handler (`async (job) => job.data`).
 *
 * - Fan-out: BullMQ has no job split into tasks, so the same work is `addBulk` of N jobs (one
 *   round trip, one MULTI), timed until the queue counts N completed; every job's return value
 *   is then checked against its input, as Tandem's fan-out checks its results.
 * - Latency: one job at a time, `add` then `waitUntilFinished` (BullMQ's way to await a job's
 *   result, over its QueueEvents stream).
 *
 * Where `redis-server` is not installed the comparison is skipped, and the report says so.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { Queue, QueueEvents } from 'bullmq'
import { Redis } from 'ioredis'
import { freePort } from '../tests/harness/ports.ts'
import type { Resources } from './resources.ts'
import { percentile } from './stats.ts'

/** redis-server's path, or undefined when it is not installed. */
export const redisServerPath: string | undefined = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
})()

export const redisMissing = 'redis-server is not installed (Debian: apt-get install redis-server): the BullMQ comparison was not run'

export interface BullmqSetup {
  workers: number
  concurrency: number
}

export interface Bullmq {
  redisVersion: string
  bullmqVersion: string
  /** Tasks (jobs) per second of one addBulk of `tasks` no-op jobs, until all completed. */
  fanOut(tasks: number): Promise<number>
  /** p50 and p99 in ms of `count` single jobs, one at a time, add → result. */
  latency(count: number): Promise<{ p50Ms: number; p99Ms: number }>
  stop(): Promise<void>
}

const queueName = 'bench'

/** A worker process: BullMQ's Worker with the no-op handler; prints `ready` once connected. */
const workerSource = `
const { Worker } = require('bullmq')
const connection = { host: '127.0.0.1', port: Number(process.env.TANDEM_REDIS_PORT), maxRetriesPerRequest: null }
const worker = new Worker(${JSON.stringify(queueName)}, async (job) => job.data, { connection, concurrency: Number(process.env.TANDEM_BULLMQ_CONCURRENCY) })
worker.on('error', (error) => process.stderr.write('bullmq worker: ' + error.message + '\\n'))
worker.waitUntilReady().then(() => process.stdout.write('ready\\n'))
`

function started(child: ChildProcess, name: string, ready: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 15 s`)), 15_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!ready.test(line)) return
      clearTimeout(timer)
      resolve()
    })
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((done) => child.once('exit', done))
  child.kill('SIGKILL')
  await exited
}

export async function startBullmq(resources: Resources, setup: BullmqSetup): Promise<Bullmq> {
  if (redisServerPath === undefined) throw new Error(redisMissing)
  const dir = resources.path('redis')
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const redis = resources.child(
    spawn(redisServerPath, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--loglevel', 'notice'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
    'redis-server',
  )
  const children: ChildProcess[] = [redis]
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null }
  let queue: Queue | undefined
  let events: QueueEvents | undefined
  try {
    await started(redis, 'redis-server', /Ready to accept connections/)
    const env = { ...process.env, TANDEM_REDIS_PORT: String(port), TANDEM_BULLMQ_CONCURRENCY: String(setup.concurrency) }
    for (let i = 0; i < setup.workers; i++) {
      const worker = resources.child(spawn(process.execPath, ['-e', workerSource, resources.root], { stdio: ['ignore', 'pipe', 'inherit'], env }), 'bullmq-worker')
      children.push(worker)
      await started(worker, 'a BullMQ worker process', /^ready$/)
    }
    queue = new Queue(queueName, { connection })
    events = new QueueEvents(queueName, { connection })
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()])
    const client = new Redis(connection)
    const info = await client.info('server').finally(() => client.disconnect())
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
    const { version: bullmqVersion } = createRequire(import.meta.url)('bullmq/package.json') as { version: string }
    const q = queue
    const e = events
    return {
      redisVersion,
      bullmqVersion,
      fanOut: async (tasks) => {
        await q.obliterate({ force: true })
        const started = performance.now()
        const jobs = await q.addBulk(Array.from({ length: tasks }, (_, i) => ({ name: 'noop', data: i })))
        for (;;) {
          const counts = await q.getJobCounts('completed', 'failed')
          if ((counts['failed'] ?? 0) > 0) throw new Error(`${counts['failed']} BullMQ jobs failed`)
          if (counts['completed'] === tasks) break
          if (performance.now() - started > 120_000) throw new Error(`BullMQ completed ${counts['completed']} of ${tasks} jobs in 120 s`)
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
        const elapsedMs = performance.now() - started
        const done = await Promise.all(jobs.map((job) => q.getJob(job.id!)))
        const wrong = done.findIndex((job, i) => job?.returnvalue !== i)
        if (wrong >= 0) throw new Error(`BullMQ job ${wrong} returned ${JSON.stringify(done[wrong]?.returnvalue)}`)
        return tasks / (elapsedMs / 1000)
      },
      latency: async (count) => {
        await q.obliterate({ force: true })
        const latencies: number[] = []
        for (let i = 0; i < count; i++) {
          const sent = performance.now()
          const job = await q.add('noop', i)
          const value: unknown = await job.waitUntilFinished(e, 60_000)
          latencies.push(performance.now() - sent)
          if (value !== i) throw new Error(`BullMQ job ${job.id} returned ${JSON.stringify(value)} for input ${i}`)
        }
        latencies.sort((a, b) => a - b)
        return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }
      },
      stop: async () => {
        await Promise.allSettled([q.close(), e.close()])
        await Promise.all(children.map(stopChild))
      },
    }
  } catch (error) {
    await Promise.allSettled([queue?.close(), events?.close()])
    await Promise.all(children.map(stopChild))
    throw error
  }
}
