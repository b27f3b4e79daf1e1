/**
 * Jobs on a real cluster: the master leases tasks to replicas, replicas run them in worker
 * threads, and each task's result is recorded once — through replica crashes and pauses,
 * failing and runaway handlers, and a master failover.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { get, post, type ExecuteBody } from '../harness/http.ts'

const handlers = fileURLToPath(new URL('../fixtures/job-handlers.js', import.meta.url))

interface TaskView {
  index: number
  state: string
  input: unknown
  attempts: number
  worker: string | null
  error: string | null
  lost_leases: number
}

interface JobView {
  id: string
  state: string
  counts: Record<string, number>
  results: ({ value?: unknown; node?: string | null; row?: unknown } | null)[]
  errors: { index: number; error: string; attempts: number }[]
  tasks: TaskView[]
}

interface JobStats {
  results_recorded: number
  results_rejected: number
  leases_expired: number
  workers: { id: string; running: number }[]
}

interface ExecutorStats {
  threads_ended: number
  tasks_started: number
  tasks_timed_out: number
  threads_killed: number
  tasks_restarted: number
  threads: number
  results_rejected: number
  running: number
}

const jobArgs = (concurrency = 4) => ['--jobs', handlers, '--concurrency', String(concurrency), '--kill-grace-ms', '300']

async function submit(url: string, body: Record<string, unknown>): Promise<string> {
  const response = await post<{ id: string }>(`${url}/jobs`, body)
  assert.equal(response.status, 201, JSON.stringify(response.body))
  return response.body.id
}

/** Waits (server side, in rounds) until the job is finished; returns it. */
async function finished(url: string, id: string, timeoutMs = 60_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const response = await get<JobView>(`${url}/jobs/${id}/wait?timeout=5s`)
    if (response.status === 200) return response.body
    assert.equal(response.status, 202, JSON.stringify(response.body))
    if (Date.now() > deadline) throw new Error(`job ${id} did not finish: ${JSON.stringify(response.body.counts)}`)
  }
}

const jobStats = async (cluster: Cluster, url: string) => (await cluster.status(url))['jobs'] as JobStats
const executorStats = async (cluster: Cluster, url: string) => (await cluster.status(url))['jobs'] as ExecutorStats

describe('jobs fan out over two replicas', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('a fan-out of 1,000 tasks completes with every result recorded once, in input order', async () => {
    cluster = await Cluster.start({ replicas: 0 })
    await cluster.addReplica(jobArgs(), { env: { TANDEM_TEST_NODE: 'r1' } })
    await cluster.addReplica(jobArgs(), { env: { TANDEM_TEST_NODE: 'r2' } })
    const inputs = Array.from({ length: 1000 }, (_, i) => i)
    const id = await submit(cluster.master.url, { name: 'double', inputs })
    const job = await finished(cluster.master.url, id)
    assert.equal(job.state, 'completed')
    assert.equal(job.counts['done'], 1000)
    assert.deepEqual(job.results.map((r) => r?.value), inputs.map((i) => i * 2))
    const ranOn = new Set(job.results.map((r) => r?.node))
    assert.deepEqual([...ranOn].sort(), ['r1', 'r2'], 'both replicas ran tasks')
    const stats = await jobStats(cluster, cluster.master.url)
    assert.equal(stats.results_recorded, 1000, 'one recorded result per task, no more')
    // The queue is replicated like any table: the replicas hold the same job.
    await cluster.converged()
    const fromReplica = await get<JobView>(`${cluster.replicas[0]!.url}/jobs/${id}`)
    assert.equal(fromReplica.body.state, 'completed')
  })

  test('near the end of a fan-out, backup copies of straggling tasks finish them elsewhere; the first result wins', async () => {
    // Every task takes two minutes on r1 and 50 ms on r2: the job ends long before r1's copies
    // could, only because r2 runs backup copies of them.
    const inputs = Array.from({ length: 12 }, (_, i) => ({ slowOn: 'r1', slowMs: 120_000, ms: 50, value: i }))
    const id = await submit(cluster.master.url, { name: 'straggle', inputs })
    const job = await finished(cluster.master.url, id, 60_000)
    assert.equal(job.state, 'completed')
    assert.deepEqual(job.results.map((r) => r?.value), inputs.map((i) => i.value))
    assert.ok(job.results.every((r) => r?.node === 'r2'), 'every result came from the fast replica')
    const stats = (await cluster.status(cluster.master.url))['jobs'] as { backup_copies: number; backup_wins: number }
    assert.ok(stats.backup_wins >= 1, JSON.stringify(stats))
    assert.ok(stats.backup_copies >= stats.backup_wins)
    // The losing copies were cancelled on r1: its slots are free again.
    await waitFor(async () => (await executorStats(cluster, cluster.replicas[0]!.url)).running === 0 || undefined, 20_000, () => 'r1 to stop its losing copies')
  })

  test('bad submissions are refused with a clear error and store nothing', async () => {
    const before = (await get<{ jobs: unknown[] }>(`${cluster.master.url}/jobs?limit=1000`)).body.jobs.length
    for (const body of [{ name: 'double' }, { name: 'double', input: 1, inputs: [1] }, { name: 'double', inputs: [] }, { name: 'double', input: 1, attempts: 0 }, { name: 'double', input: 1, backoff: { type: 'linear' } }, { name: 'no such', input: 1 }, { name: 'double', input: 1, colour: 'red' }]) {
      const response = await post<{ code: string; error: string }>(`${cluster.master.url}/jobs`, body)
      assert.equal(response.status, 400, JSON.stringify(body))
      assert.equal(response.body.code, 'BAD_REQUEST')
      assert.ok(response.body.error.length > 10)
    }
    const malformed = await post<{ code: string }>(`${cluster.master.url}/jobs`, '{"name":', 'application/json')
    assert.equal(malformed.status, 400)
    assert.equal((await get<{ jobs: unknown[] }>(`${cluster.master.url}/jobs?limit=1000`)).body.jobs.length, before)
    assert.equal((await get<{ code: string }>(`${cluster.master.url}/jobs/j_nope`)).body.code, 'JOB_NOT_FOUND')
  })

  test('an idempotency key submits a job once; the same key for a different job is refused', async () => {
    const body = { name: 'double', inputs: [1, 2, 3], idempotency_key: 'nightly-2026-11-26' }
    const first = await post<{ id: string; replayed: boolean }>(`${cluster.master.url}/jobs`, body)
    assert.equal(first.status, 201)
    const again = await post<{ id: string; replayed: boolean }>(`${cluster.replicas[0]!.url}/jobs`, body)
    assert.equal(again.status, 200)
    assert.deepEqual([again.body.id, again.body.replayed], [first.body.id, true])
    const different = await post<{ code: string }>(`${cluster.master.url}/jobs`, { ...body, inputs: [1, 2, 4] })
    assert.equal(different.status, 422)
    assert.equal(different.body.code, 'IDEMPOTENCY_KEY_REUSED')
    assert.deepEqual((await finished(cluster.master.url, first.body.id)).results.map((r) => r?.value), [2, 4, 6])
  })

  test('a handler that throws exhausts its attempts and lands in dead-letter with its input and error', async () => {
    const id = await submit(cluster.replicas[1]!.url, { name: 'fail', input: { photo: 7 }, attempts: 3, backoff: { type: 'fixed', delay_ms: 50 } })
    const job = await finished(cluster.master.url, id)
    assert.equal(job.state, 'failed')
    const [task] = job.tasks
    assert.equal(task?.state, 'dead')
    assert.equal(task?.attempts, 3)
    assert.deepEqual(task?.input, { photo: 7 })
    assert.match(task?.error ?? '', /cannot process \{"photo":7\}/)
    assert.deepEqual(job.errors.map((e) => [e.index, e.attempts]), [[0, 3]])
    // Retried, it fails again the same way: the dead task was queued with fresh attempts.
    const retried = await post<JobView>(`${cluster.master.url}/jobs/${id}/retry`, '')
    assert.equal(retried.status, 200)
    const again = await finished(cluster.master.url, id)
    assert.equal(again.tasks[0]?.attempts, 3)
    assert.equal(again.state, 'failed')
  })

  test('cancelling a job stops its running tasks; a finished job cannot be cancelled', async () => {
    const id = await submit(cluster.master.url, { name: 'slow', inputs: Array.from({ length: 20 }, (_, i) => ({ ms: 30_000, value: i })) })
    await waitFor(async () => ((await get<JobView>(`${cluster.master.url}/jobs/${id}`)).body.counts['running'] ?? 0) > 0 || undefined, 20_000)
    const cancelled = await post<JobView>(`${cluster.master.url}/jobs/${id}/cancel`, '')
    assert.equal(cancelled.status, 200)
    assert.equal(cancelled.body.state, 'cancelled')
    assert.equal(cancelled.body.counts['cancelled'], 20)
    // The replicas stop the handlers (their slots free up), long before the 30 s they would take.
    await waitFor(async () => {
      const stats = await Promise.all(cluster.replicas.map((r) => executorStats(cluster, r.url)))
      return stats.every((s) => s.running === 0) || undefined
    }, 20_000, () => 'replicas to stop the cancelled tasks')
    const again = await post<{ code: string }>(`${cluster.master.url}/jobs/${id}/cancel`, '')
    assert.equal(again.status, 409)
    assert.equal(again.body.code, 'JOB_FINISHED')
  })
})

describe('jobs survive failing replicas', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('SIGKILL of a replica mid-job: the job still completes, no result lost or recorded twice', async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--lease-ms', '1000'] })
    const victim = await cluster.addReplica(jobArgs(), { env: { TANDEM_TEST_NODE: 'r1' } })
    await cluster.addReplica(jobArgs(), { env: { TANDEM_TEST_NODE: 'r2' } })
    const inputs = Array.from({ length: 200 }, (_, i) => ({ ms: 40, value: i }))
    const id = await submit(cluster.master.url, { name: 'slow', inputs, attempts: 1 })
    await waitFor(async () => ((await get<JobView>(`${cluster.master.url}/jobs/${id}`)).body.counts['done'] ?? 0) >= 30 || undefined, 30_000)
    const before = await jobStats(cluster, cluster.master.url)
    await victim.kill('SIGKILL')
    const job = await finished(cluster.master.url, id)
    assert.equal(job.state, 'completed', JSON.stringify(job.tasks.filter((t) => t.state !== 'done')))
    assert.deepEqual(job.results.map((r) => r?.value), inputs.map((i) => i.value))
    const after = await jobStats(cluster, cluster.master.url)
    assert.ok(before.results_recorded < 200)
    assert.equal(after.results_recorded, 200, 'exactly one recorded result per task')
    assert.ok(after.leases_expired >= 1, 'the dead replica\'s leases expired and its tasks ran again')
    assert.ok(job.tasks.some((t) => t.lost_leases > 0))
  })

  test('SIGSTOP a replica past its lease: its tasks finish elsewhere, its late results are rejected', async () => {
    const paused = cluster.replicas[1]!
    await cluster.replicas[0]!.restart()
    // Long enough to be paused mid-run, short enough that the job ends (lease 1 s, then a rerun) well
    // before the master gives up on the silent replica (5 s): a connection it closed would bring
    // cancellations on reconnect instead of late results.
    const inputs = Array.from({ length: 8 }, (_, i) => ({ ms: 1500, value: i }))
    const id = await submit(cluster.master.url, { name: 'slow', inputs, attempts: 1 })
    await waitFor(async () => {
      const stats = await jobStats(cluster, cluster.master.url)
      const worker = stats.workers.find((w) => w.id === paused.id)
      return (worker?.running ?? 0) > 0 || undefined
    }, 20_000, () => 'the replica to be running tasks')
    const recordedBefore = (await jobStats(cluster, cluster.master.url)).results_recorded
    paused.pause()
    try {
      const job = await finished(cluster.master.url, id)
      assert.equal(job.state, 'completed', `${JSON.stringify(job.tasks.filter((t) => t.state !== 'done'))}\n${cluster.logs(30)}`)
      assert.deepEqual(job.results.map((r) => r?.value), inputs.map((i) => i.value))
      assert.ok(job.results.every((r) => r?.node === 'r1'), 'every recorded result came from the replica that kept its leases')
    } finally {
      paused.resume()
    }
    // Awake again, the paused replica finishes its handlers and reports: too late.
    const rejected = await waitFor(async () => {
      const stats = await executorStats(cluster, paused.url)
      return stats.results_rejected > 0 ? stats.results_rejected : undefined
    }, 20_000, () => `the paused replica to have a result rejected\n${cluster.logs(25)}`)
    assert.ok(rejected >= 1)
    const stats = await jobStats(cluster, cluster.master.url)
    assert.ok(stats.results_rejected >= rejected)
    assert.equal(stats.results_recorded - recordedBefore, 8, 'each task recorded once: the late results changed nothing')
    const job = (await get<JobView>(`${cluster.master.url}/jobs/${id}`)).body
    assert.ok(job.results.every((r) => r?.node === 'r1'))
  })
})

describe('handlers run off the event loop and see the data of their submission', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('a timeout kills a CPU-bound handler, and the replica keeps replicating meanwhile', async () => {
    cluster = await Cluster.start({ replicas: 0 })
    const replica = await cluster.addReplica(jobArgs(1))
    await post(`${cluster.master.url}/db/execute`, ['CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)'])
    const id = await submit(cluster.master.url, { name: 'spin', input: { ms: 120_000 }, timeout_ms: 3000, attempts: 1 })
    await waitFor(async () => (await executorStats(cluster, replica.url)).running > 0 || undefined, 20_000)
    // While the handler burns a core, writes keep arriving and the replica applies them.
    for (let i = 0; i < 5; i++) {
      const write = await post<ExecuteBody>(`${cluster.master.url}/db/execute`, [['INSERT INTO kv(v) VALUES (?)', `while spinning ${i}`]])
      const read = await get<{ results: { values?: unknown[][] }[] }>(`${replica.url}/db/query?level=none&min_lsn=${write.body.lsn}&min_lsn_timeout=2s&q=${encodeURIComponent('SELECT count(*) FROM kv')}`)
      assert.equal(read.status, 200, JSON.stringify(read.body))
      assert.deepEqual(read.body.results[0]?.values, [[i + 1]])
    }
    const job = await finished(cluster.master.url, id)
    assert.equal(job.state, 'failed')
    assert.match(job.tasks[0]?.error ?? '', /timed out after 3000 ms/)
    const stats = await executorStats(cluster, replica.url)
    assert.equal(stats.tasks_timed_out, 1)
    assert.equal(stats.threads_killed, 1, 'the handler ignored its signal, so its thread was killed')
    // The killed thread was replaced: the replica still runs tasks.
    const next = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'double', input: 21 }))
    assert.equal(next.results[0]?.value, 42)
  })

  test('a job submitted right after a write sees that write on the replica that runs it', async () => {
    // This replica applies every entry 400 ms late: without waiting for the job's LSN, the
    // handler would read its database before the write arrived.
    const delayed = await cluster.addReplica(['--apply-delay-ms', '400', ...jobArgs()], { env: { TANDEM_TEST_NODE: 'delayed' } })
    await cluster.replicas[0]!.kill('SIGKILL')
    for (let i = 0; i < 3; i++) {
      const write = await post<ExecuteBody>(`${cluster.master.url}/db/execute`, [['INSERT INTO kv(id, v) VALUES (?, ?)', 100 + i, `fresh ${i}`]])
      assert.equal(write.status, 200)
      const job = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'readRow', input: { id: 100 + i } }))
      assert.equal(job.results[0]?.node, 'delayed')
      assert.deepEqual(job.results[0]?.row, { id: 100 + i, v: `fresh ${i}` })
    }
    assert.ok(delayed.url.length > 0)
  })
})

describe('tasks share a replica\'s worker threads', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('four slots on two threads run four tasks at once', async () => {
    cluster = await Cluster.start({ replicas: 0 })
    const replica = await cluster.addReplica(['--jobs', handlers, '--concurrency', '4', '--job-threads', '2'])
    const inputs = Array.from({ length: 4 }, (_, i) => ({ ms: 1500, value: i }))
    const id = await submit(cluster.master.url, { name: 'slow', inputs, attempts: 1 })
    const stats = await waitFor(async () => {
      const now = await executorStats(cluster, replica.url)
      return now.running === 4 ? now : undefined
    }, 20_000, () => 'four tasks running on the replica at once')
    assert.equal(stats.threads, 2, 'two threads carry the four tasks')
    const job = await finished(cluster.master.url, id)
    assert.equal(job.state, 'completed')
    assert.deepEqual(job.results.map((r) => r?.value), [0, 1, 2, 3])
  })

  test('when a handler is killed, the task that shared its thread starts again on a new one, and no attempt is spent', async () => {
    const replica = await cluster.addReplica(['--jobs', handlers, '--concurrency', '2', '--job-threads', '1', '--kill-grace-ms', '300'])
    await cluster.replicas[0]!.kill('SIGKILL')
    const runaway = await submit(cluster.master.url, { name: 'spin', input: { ms: 120_000 }, timeout_ms: 1500, attempts: 1 })
    await waitFor(async () => (await executorStats(cluster, replica.url)).running === 1 || undefined, 20_000, () => 'the runaway handler to start')
    // Sent to the same thread while it spins: it cannot start until that thread is gone.
    const bystander = await submit(cluster.master.url, { name: 'slow', input: { ms: 100, value: 7 }, attempts: 1 })
    const job = await finished(cluster.master.url, bystander)
    assert.equal(job.state, 'completed', JSON.stringify(job.tasks))
    assert.equal(job.results[0]?.value, 7)
    assert.equal(job.tasks[0]?.attempts, 1, 'the restart is not a retry')
    assert.match((await finished(cluster.master.url, runaway)).tasks[0]?.error ?? '', /timed out after 1500 ms/)
    const stats = await executorStats(cluster, replica.url)
    assert.equal(stats.threads_killed, 1)
    assert.equal(stats.tasks_restarted, 1)
  })

  test('a thread that exits by itself fails every task it was running, and is replaced', async () => {
    const replica = cluster.replicas.at(-1)!
    const bystander = await submit(cluster.master.url, { name: 'slow', input: { ms: 5000, value: 1 }, attempts: 1 })
    await waitFor(async () => (await executorStats(cluster, replica.url)).running === 1 || undefined, 20_000, () => 'the first task to start')
    const culprit = await submit(cluster.master.url, { name: 'exitThread', input: null, attempts: 1 })
    // Either may have ended the thread, as far as the replica can tell: both fail.
    for (const id of [culprit, bystander]) {
      const job = await finished(cluster.master.url, id)
      assert.equal(job.state, 'failed')
      assert.match(job.tasks[0]?.error ?? '', /worker thread running the handler exited/)
    }
    const next = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'double', input: 5 }))
    assert.equal(next.results[0]?.value, 10)
    assert.equal((await executorStats(cluster, replica.url)).threads, 1)
  })
})

describe('killing a handler never takes its replica down', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('a handler stuck in long SQLite queries is killed between them, and its replica lives on', async () => {
    // Ending a thread inside a call into SQLite aborts the whole process (the binding throws a
    // C++ exception nobody catches): the kill waits for the query under way to return, and no
    // query starts once the thread is being killed. Each query here runs for about a second.
    cluster = await Cluster.start({ replicas: 0 })
    const replica = await cluster.addReplica(jobArgs(1))
    const id = await submit(cluster.master.url, { name: 'queryForever', input: { rows: 10_000_000 }, timeout_ms: 500, attempts: 1 })
    const job = await finished(cluster.master.url, id)
    assert.match(job.tasks[0]?.error ?? '', /timed out after 500 ms/)
    // The kill is complete once the thread has ended, after its query returned.
    await waitFor(async () => (await executorStats(cluster, replica.url)).threads_ended === 1 || undefined, 20_000, () => 'the killed thread to end')
    const next = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'double', input: 4 }))
    assert.equal(next.results[0]?.value, 8)
    assert.equal(replica.child?.exitCode, null, `the replica exited:\n${replica.log.slice(-5).join('\n')}`)
  })
})

describe('a ctx.db statement that never ends', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('is stopped by --query-timeout (the task fails saying so), or by the kill of a task past its timeout', async () => {
    cluster = await Cluster.start({ replicas: 0 })
    const replica = await cluster.addReplica([...jobArgs(1), '--query-timeout', '1s'])
    const limited = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'queryOnce', input: {}, timeout_ms: 600_000, attempts: 1 }))
    assert.match(limited.tasks[0]?.error ?? '', /query timeout: a ctx.db statement ran past --query-timeout \(1000 ms\)/)
    // Without a statement limit, the task's own timeout ends it: the kill stops the statement
    // the thread is in (it used to wait for it to return, here for ever).
    await replica.restart({ args: [...jobArgs(1), '--query-timeout', '0'] })
    const killed = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'queryOnce', input: {}, timeout_ms: 500, attempts: 1 }))
    assert.match(killed.tasks[0]?.error ?? '', /timed out after 500 ms/)
    await waitFor(async () => (await executorStats(cluster, replica.url)).threads_ended === 1 || undefined, 20_000, () => 'the killed thread to end')
    const next = await finished(cluster.master.url, await submit(cluster.master.url, { name: 'double', input: 4 }))
    assert.equal(next.results[0]?.value, 8)
  })
})

describe('jobs survive a master failover', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('kill -9 the master mid-job, promote a replica: the job completes, no result recorded twice', async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--sync-replicas', '2', '--lease-ms', '1500'] })
    const candidate = await cluster.addReplica([])
    const worker = await cluster.addReplica(jobArgs(), { env: { TANDEM_TEST_NODE: 'worker' } })
    const inputs = Array.from({ length: 60 }, (_, i) => ({ ms: 100, value: i }))
    const id = await submit(cluster.master.url, { name: 'slow', inputs, attempts: 1 })
    await waitFor(async () => ((await get<JobView>(`${cluster.master.url}/jobs/${id}`)).body.counts['done'] ?? 0) >= 10 || undefined, 30_000)
    await cluster.master.kill('SIGKILL')
    const promoted = await post<{ epoch: number }>(`${candidate.url}/cluster/promote`, '')
    assert.equal(promoted.status, 200, JSON.stringify(promoted.body))
    // What the old master recorded (and the new one holds as done) is what the new master must
    // not record again. The new master may already be recording: read its done count between two
    // equal readings of its own recorded count.
    const doneByOldMaster = await waitFor(async () => {
      const recordedBefore = (await jobStats(cluster, candidate.url)).results_recorded
      const done = (await get<JobView>(`${candidate.url}/jobs/${id}`)).body.counts['done'] ?? 0
      const recordedAfter = (await jobStats(cluster, candidate.url)).results_recorded
      return recordedBefore === recordedAfter ? done - recordedAfter : undefined
    }, 20_000)
    assert.ok(doneByOldMaster >= 10 && doneByOldMaster < 60)
    const job = await finished(candidate.url, id).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${cluster.logs(40)}`)
    })
    assert.equal(job.state, 'completed', JSON.stringify(job.errors))
    assert.deepEqual(job.results.map((r) => r?.value), inputs.map((i) => i.value))
    const stats = await jobStats(cluster, candidate.url)
    assert.equal(stats.results_recorded, 60 - doneByOldMaster, 'the new master recorded each remaining task once')
    // The worker now follows the new master and holds the same queue.
    await waitFor(async () => ((await get<JobView>(`${worker.url}/jobs/${id}`)).body.state === 'completed') || undefined, 20_000)
  })
})

describe('prefetch: a replica holds leases beyond its slots', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('its queued tasks start there as slots free; killed, its prefetched leases expire and run elsewhere, each recorded once', async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--lease-ms', '1000'] })
    const victim = await cluster.addReplica([...jobArgs(2), '--prefetch', '3'], { env: { TANDEM_TEST_NODE: 'r1' } })
    // On r1 a task never ends before the kill (its slots never free: the ones queued there never
    // start); elsewhere it takes 50 ms.
    const inputs = Array.from({ length: 12 }, (_, i) => ({ slowOn: 'r1', slowMs: 60_000, ms: 50, value: i }))
    const id = await submit(cluster.master.url, { name: 'straggle', inputs, attempts: 1, timeout_ms: 120_000 })
    // Two tasks run on its two slots; two more (one round: no task's run time is known yet) wait
    // on the replica itself.
    await waitFor(async () => {
      const replica = (await cluster.status(victim.url))['jobs'] as { running: number; waiting: number; prefetch: number }
      return replica.running === 2 && replica.waiting === 2 && replica.prefetch === 3 ? true : undefined
    }, 20_000, () => `the replica to hold 2 running and 2 queued tasks\n${cluster.logs(10)}`)
    const held = (await jobStats(cluster, cluster.master.url)).workers.find((w) => w.id === victim.id)
    assert.equal(held?.running, 4, 'the master leased it its slots plus a round of prefetch')
    await victim.kill('SIGKILL')
    // Alone, so that no backup copy runs them: its four leases, the two queued there included, expire.
    await waitFor(async () => ((await jobStats(cluster, cluster.master.url)).leases_expired === 4 ? true : undefined), 20_000, () => `the killed replica's four leases to expire\n${cluster.logs(10)}`)
    await cluster.addReplica(jobArgs(4), { env: { TANDEM_TEST_NODE: 'r2' } })
    const job = await finished(cluster.master.url, id)
    assert.equal(job.state, 'completed', JSON.stringify(job.tasks.filter((t) => t.state !== 'done')))
    assert.deepEqual(job.results.map((r) => r?.value), inputs.map((i) => i.value))
    const stats = await jobStats(cluster, cluster.master.url)
    assert.equal(stats.leases_expired, 4, "the killed replica's leases, the three queued ones included, expired")
    const lost = job.tasks.filter((t) => t.lost_leases > 0)
    assert.equal(lost.length, 4, 'its four tasks ran again elsewhere')
    assert.ok(lost.every((t) => job.results[t.index]?.node === 'r2'), 'each ran to its end on the replica that lived')
    assert.equal(stats.results_recorded, inputs.length, 'exactly one recorded result per task')
  })
})

describe('flow control: limits hold across replicas', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('a group limit of 2 over two replicas × 4 slots: never 3 of the group running; another group is not held to it', async () => {
    cluster = await Cluster.start({ replicas: 0 })
    await cluster.addReplica(jobArgs(4), { env: { TANDEM_TEST_NODE: 'r1' } })
    await cluster.addReplica(jobArgs(4), { env: { TANDEM_TEST_NODE: 'r2' } })
    await waitFor(async () => ((await jobStats(cluster, cluster.master.url)).workers.length === 2 ? true : undefined), 20_000)
    const set = await post<{ scope: string; concurrency: number }>(`${cluster.master.url}/jobs/limits`, { group: 'tenant-42', concurrency: 2 })
    assert.deepEqual([set.status, set.body.scope, set.body.concurrency], [200, 'group:tenant-42', 2])
    const limitedDir = mkdtempSync(join(tmpdir(), 'tandem-limit-'))
    const freeDir = mkdtempSync(join(tmpdir(), 'tandem-free-'))
    try {
      const limited = await submit(cluster.master.url, { name: 'countRunning', inputs: Array.from({ length: 12 }, () => ({ dir: limitedDir, ms: 150 })), group: 'tenant-42' })
      const free = await submit(cluster.master.url, { name: 'countRunning', inputs: Array.from({ length: 12 }, () => ({ dir: freeDir, ms: 400 })), group: 'tenant-7' })
      const [a, b] = [await finished(cluster.master.url, limited), await finished(cluster.master.url, free)]
      const peak = (job: JobView) => Math.max(...job.results.map((r) => r as unknown as number))
      assert.equal(a.state, 'completed', JSON.stringify(a.errors))
      assert.equal(peak(a), 2, `the limited group ran at most 2 at once (and did run 2): ${JSON.stringify(a.results)}`)
      assert.ok(new Set(a.tasks.map((t) => t.worker)).size === 2, 'on both replicas')
      assert.ok(peak(b) > 2, `the other group was not limited: ${JSON.stringify(b.results)}`)
    } finally {
      rmSync(limitedDir, { recursive: true, force: true })
      rmSync(freeDir, { recursive: true, force: true })
    }
    const listed = await get<{ limits: { scope: string }[] }>(`${cluster.replicas[0]!.url}/jobs/limits`)
    assert.deepEqual(listed.body.limits.map((l) => l.scope), ['group:tenant-42'], 'a replica forwards')
    const bad = await post<{ code: string }>(`${cluster.master.url}/jobs/limits`, { group: 'g', concurrency: -1 })
    assert.deepEqual([bad.status, bad.body.code], [400, 'BAD_REQUEST'])
    const removed = await fetch(`${cluster.master.url}/jobs/limits/${encodeURIComponent('group:tenant-42')}`, { method: 'DELETE' })
    assert.equal(removed.status, 200)
    const again = await fetch(`${cluster.master.url}/jobs/limits/${encodeURIComponent('group:tenant-42')}`, { method: 'DELETE' })
    assert.equal(again.status, 404)
  })
})
