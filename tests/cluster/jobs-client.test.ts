/**
 * `client.jobs` and `tandem jobs` against real processes: a master and two replicas that run
 * the handlers of tests/fixtures/client-handlers.js. Handlers that must stay running hold until
 * the test releases them (a file appears) or cancels them, so nothing here depends on timing.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { JobFailedError, connect, isTandemClientError, type JobEvent, type ProgressEvent, type TaskEvent, type TandemClient } from '../../src/client/index.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'

const handlers = fileURLToPath(new URL('../fixtures/client-handlers.js', import.meta.url))
const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

function tandem(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: tmpdir() } })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** Resolves with the first event that satisfies `accept`. */
function nextEvent<T>(subscribe: (listener: (event: T) => void) => void, accept: (event: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => subscribe((event) => accept(event) && resolve(event)))
}

describe('jobs from the client and the CLI, run by two replicas', () => {
  let cluster: Cluster
  let db: TandemClient
  let files: string
  let fileCount = 0
  /** A path for a handler to wait on; it appears when the test calls release(). */
  const newFile = () => join(files, `release-${++fileCount}`)
  const release = (file: string) => writeFileSync(file, 'go')

  before(async () => {
    files = mkdtempSync(join(tmpdir(), 'tandem-jobs-client-'))
    cluster = await Cluster.start({ replicas: 2, replicaArgs: ['--jobs', handlers, '--concurrency', '2'] })
    // Through a replica first: the client learns the master from it.
    db = await connect([cluster.replicas[0]!.url, cluster.master.url], { timeoutMs: 15_000 })
  })

  after(async () => {
    await db.close()
    await cluster.stop()
    rmSync(files, { recursive: true, force: true })
  })

  test('map runs a handler on every input and resolves to the results in input order', async () => {
    const inputs = Array.from({ length: 25 }, (_, i) => i)
    assert.deepEqual(await db.jobs.map('square', inputs), inputs.map((i) => i * i))
  })

  test('submit returns a handle; wait resolves to the completed job with its result', async () => {
    const input = { photo: 7, sizes: [64, 128] }
    const handle = await db.jobs.submit('echo', input)
    assert.match(handle.id, /^j_/)
    assert.ok(handle.lsn !== undefined && handle.lsn > 0)
    assert.equal(handle.replayed, false)
    const job = await handle.wait({ timeoutMs: 30_000 })
    assert.equal(job.id, handle.id)
    assert.equal(job.name, 'echo')
    assert.equal(job.state, 'completed')
    assert.deepEqual(job.results, [input])
    assert.deepEqual(job.errors, [])
    assert.equal(job.counts.done, 1)
    assert.equal(job.counts.total, 1)
    assert.equal(job.progress, 1)
    assert.notEqual(job.finishedAt, null)
    assert.equal(job.tasks.length, 1)
    assert.equal(job.tasks[0]!.state, 'done')
    assert.equal(job.tasks[0]!.attempts, 1)
    assert.ok(cluster.replicas.some((r) => r.id === job.tasks[0]!.worker), `worker ${job.tasks[0]!.worker} is a replica`)
    assert.deepEqual(await handle.status(), job)
  })

  test('submit takes an array as one input; submitMany fans it out into one task per input', async () => {
    const one = await (await db.jobs.submit('echo', [1, 2, 3])).wait()
    assert.deepEqual(one.results, [[1, 2, 3]])
    const many = await (await db.jobs.submitMany('echo', [1, 'two', { three: 3 }, null])).wait()
    assert.equal(many.counts.total, 4)
    assert.deepEqual(many.results, [1, 'two', { three: 3 }, null])
  })

  test('options reach the master: the job shows them', async () => {
    const handle = await db.jobs.submit('echo', 1, { attempts: 5, timeoutMs: 10_000, priority: 3, delayMs: 0, backoff: { type: 'fixed', delayMs: 10, jitter: 0.5, maxMs: 100 } })
    const job = await handle.wait()
    assert.deepEqual(job.options, { attempts: 5, backoff: { type: 'fixed', delayMs: 10, jitter: 0.5, maxMs: 100 }, timeoutMs: 10_000, priority: 3 })
  })

  test('a bad option is refused with BAD_REQUEST naming the field, and nothing is stored', async () => {
    await assert.rejects(db.jobs.submit('echo', 1, { attempts: 0 }), (error) => isTandemClientError(error, 'BAD_REQUEST') && /attempts/.test(error.message))
    await assert.rejects(db.jobs.submitMany('echo', []), (error) => isTandemClientError(error, 'BAD_REQUEST') && /inputs/.test(error.message))
  })

  test('progress, task and job events arrive while a handler runs; the stream closes when the job finishes', async () => {
    const file = newFile()
    const handle = await db.jobs.submit('hold', { file, value: 'released' })
    const progress: ProgressEvent[] = []
    const tasks: TaskEvent[] = []
    const jobs: JobEvent[] = []
    handle.on('task', (event) => tasks.push(event))
    handle.on('job', (event) => jobs.push(event))
    const firstProgress = nextEvent<ProgressEvent>((listener) => handle.on('progress', listener))
    handle.on('progress', (event) => progress.push(event))
    const finished = nextEvent<JobEvent>((listener) => handle.on('job', listener), (event) => event.state === 'completed')
    const first = await firstProgress
    assert.equal(first.index, 0)
    assert.equal(typeof first.value, 'number')
    release(file)
    const job = await handle.wait()
    assert.deepEqual(job.results, ['released'])
    await finished
    assert.ok(progress.length >= 1)
    assert.ok(progress.every((p) => p.index === 0 && typeof p.value === 'number'))
    assert.ok(tasks.some((t) => t.index === 0 && t.state === 'done' && t.attempts === 1), JSON.stringify(tasks))
    assert.equal(jobs.at(-1)?.state, 'completed')
  })

  test('cancel stops a running job; wait throws JobFailedError with the cancelled job; a second cancel is JOB_FINISHED', async () => {
    const handle = await db.jobs.submit('hold', {})
    await waitFor(async () => ((await handle.status()).counts.running === 1 ? true : undefined), 20_000, () => `job ${handle.id} to run`)
    const cancelled = await handle.cancel()
    assert.equal(cancelled.state, 'cancelled')
    assert.equal(cancelled.counts.cancelled, 1)
    await assert.rejects(handle.wait(), (error) => error instanceof JobFailedError && error.job.state === 'cancelled' && error.job.id === handle.id)
    await assert.rejects(handle.cancel(), (error) => isTandemClientError(error, 'JOB_FINISHED') && error.status === 409)
  })

  test('a task that runs out of attempts fails the job: map rejects with JobFailedError and the dead tasks’ errors', async () => {
    const error = await db.jobs.map('fail', ['a', 'b'], { attempts: 2, backoff: { type: 'fixed', delayMs: 10 } }).then(
      () => assert.fail('map should reject'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof JobFailedError, String(error))
    assert.equal(error.code, 'JOB_FAILED')
    assert.equal(error.job.state, 'failed')
    assert.equal(error.job.counts.dead, 2)
    const errors = [...error.errors].sort((x, y) => x.index - y.index)
    assert.deepEqual(errors.map((e) => [e.index, e.attempts]), [[0, 2], [1, 2]])
    assert.match(errors[0]!.error, /refused "a"/)
    assert.match(errors[1]!.error, /refused "b"/)
  })

  test('an idempotency key makes a repeated submission answer with the first job', async () => {
    const key = `client-test-${process.pid}`
    const first = await db.jobs.submit('echo', 'once', { idempotencyKey: key })
    const again = await db.jobs.submit('echo', 'once', { idempotencyKey: key })
    assert.equal(again.id, first.id)
    assert.equal(first.replayed, false)
    assert.equal(again.replayed, true)
    assert.deepEqual((await again.wait()).results, ['once'])
  })

  test('dedupe: a second submission while the key\'s job runs answers it; debounce replaces a waiting job\'s input; bad dedupe fields store nothing', async () => {
    const file = newFile()
    const key = `dedupe-${process.pid}`
    const first = await db.jobs.submit('hold', { file, value: 'first' }, { dedupe: { key } })
    const again = await db.jobs.submit('hold', { file, value: 'second' }, { dedupe: { key } })
    assert.deepEqual([again.id, first.deduplicated, again.deduplicated, again.replayed], [first.id, false, true, false])
    release(file)
    assert.deepEqual((await first.wait()).results, ['first'], 'the dropped submission changed nothing')

    const debounceKey = `debounce-${process.pid}`
    const waiting = await db.jobs.submit('echo', 'draft 1', { delayMs: 60_000, dedupe: { key: debounceKey, mode: 'debounce' } })
    const newer = await db.jobs.submit('echo', 'draft 2', { delayMs: 300, dedupe: { key: debounceKey, mode: 'debounce' } })
    assert.deepEqual([newer.id, newer.debounced, newer.replayed], [waiting.id, true, false])
    assert.deepEqual((await newer.wait()).results, ['draft 2'], 'the newest input ran, after the newest delay (not the first minute)')

    const before = await db.jobs.list({ limit: 500 })
    for (const dedupe of [{ key: '' }, { key: 'k', mode: 'throttle' }, { key: 'k', windowMs: -1 }, { key: 'k', mode: 'debounce' }] as { key: string }[]) {
      await assert.rejects(db.jobs.submit('echo', 1, { dedupe }), (error) => isTandemClientError(error, 'BAD_REQUEST') && /dedupe/.test(error.message), JSON.stringify(dedupe))
    }
    assert.equal((await db.jobs.list({ limit: 500 })).length, before.length, 'nothing stored')
  })

  test('schedules: set, read, list and delete; each occurrence is a job that runs', async () => {
    const id = `client-schedule-${process.pid}`
    const set = await db.jobs.schedules.set(id, 'echo', { everyMs: 1000, input: 'tick' })
    assert.deepEqual([set.id, set.everyMs, set.cron, set.catchUp, set.lastJob], [id, 1000, null, 'latest', null])
    assert.ok(set.nextAt.getTime() > set.createdAt.getTime())
    const ran = await waitFor(async () => (await db.jobs.schedules.get(id)).lastJob ?? undefined, 20_000, () => 'an occurrence')
    assert.deepEqual((await db.jobs.handle(ran).wait()).results, ['tick'])
    const replaced = await db.jobs.schedules.set(id, 'echo', { cron: '0 3 * * *', tz: 'Europe/Paris', input: 'nightly' })
    assert.deepEqual([replaced.cron, replaced.tz, replaced.everyMs, replaced.input], ['0 3 * * *', 'Europe/Paris', null, 'nightly'])
    assert.equal((await db.jobs.schedules.list()).filter((s) => s.id === id).length, 1)
    await db.jobs.schedules.delete(id)
    await assert.rejects(db.jobs.schedules.get(id), (error) => isTandemClientError(error, 'SCHEDULE_NOT_FOUND'))
    await assert.rejects(db.jobs.schedules.delete(id), (error) => isTandemClientError(error, 'SCHEDULE_NOT_FOUND'))
    await assert.rejects(db.jobs.schedules.set('bad id!', 'echo', { everyMs: 1000 }), (error) => isTandemClientError(error, 'BAD_REQUEST') && /"id"/.test(error.message))
  })

  test('after: a job waits for the jobs it runs after and gets their results; one that fails fails it, and the client says which', async () => {
    const squares = await db.jobs.submitMany('square', [1, 2, 3])
    const sum = await db.jobs.submit('sumAfter', 100, { after: [squares.id] })
    assert.ok(['waiting', 'queued', 'running', 'completed'].includes((await db.jobs.get(sum.id)).state))
    assert.deepEqual((await sum.wait()).results, [114], '100 + 1 + 4 + 9')

    const failing = await db.jobs.submit('fail', 'no', { attempts: 1 })
    const blocked = await db.jobs.submit('sumAfter', 0, { after: [failing.id] })
    const tolerant = await db.jobs.submit('sumAfter', 1, { after: [failing.id], onFailure: 'continue' })
    await assert.rejects(blocked.wait(), (error) => error instanceof JobFailedError && error.job.errors.some((e) => e.error?.includes(`job ${failing.id}, which it runs after, ended failed`) === true))
    assert.deepEqual((await tolerant.wait()).results, [1], 'continue runs it anyway: the failed job\'s result is null')
    assert.deepEqual((await db.jobs.list({ state: 'waiting' })).filter((j) => [blocked.id, tolerant.id].includes(j.id)), [], 'none stuck waiting')
    await assert.rejects(db.jobs.submit('echo', 1, { after: ['j_nosuchjob'] }), (error) => isTandemClientError(error, 'BAD_REQUEST') && /does not exist/.test(error.message))
  })

  test('limits from the client: set, list and delete; a job shows its group', async () => {
    await db.jobs.setLimit({ group: 'client-tenant', concurrency: 1, rate: { max: 100, periodMs: 1000 } })
    await db.jobs.setLimit({ handler: 'square', concurrency: 50 })
    const limits = await db.jobs.limits()
    assert.deepEqual(limits.find((l) => l.scope === 'group:client-tenant'), { scope: 'group:client-tenant', concurrency: 1, rate: { max: 100, periodMs: 1000 } })
    const job = await (await db.jobs.submitMany('square', [2, 3], { group: 'client-tenant' })).wait()
    assert.deepEqual([job.results, job.options.group], [[4, 9], 'client-tenant'])
    await db.jobs.deleteLimit('group:client-tenant')
    await db.jobs.deleteLimit('handler:square')
    await assert.rejects(db.jobs.deleteLimit('handler:square'), (error) => isTandemClientError(error, 'LIMIT_NOT_FOUND'))
    await assert.rejects(db.jobs.setLimit({ group: 'g' }), (error) => isTandemClientError(error, 'BAD_REQUEST') && /concurrency/.test(error.message))
  })

  test('get and retry of unknown jobs are JOB_NOT_FOUND; retry of a completed job is JOB_NOT_RETRYABLE; list filters', async () => {
    await assert.rejects(db.jobs.get('j_nope'), (error) => isTandemClientError(error, 'JOB_NOT_FOUND') && error.status === 404)
    await assert.rejects(db.jobs.retry('j_nope'), (error) => isTandemClientError(error, 'JOB_NOT_FOUND'))
    const done = await (await db.jobs.submit('square', 12)).wait()
    await assert.rejects(db.jobs.retry(done.id), (error) => isTandemClientError(error, 'JOB_NOT_RETRYABLE') && error.status === 409)
    const listed = await db.jobs.list({ name: 'square', state: 'completed', limit: 50 })
    assert.ok(listed.some((j) => j.id === done.id && j.taskCount === 1))
    assert.ok(listed.every((j) => j.name === 'square' && j.state === 'completed'))
    const newest = await db.jobs.list({ limit: 2 })
    assert.equal(newest.length, 2)
    const older = await db.jobs.list({ limit: 2, before: newest[1]!.id })
    assert.ok(older.every((j) => !newest.some((n) => n.id === j.id)))
  })

  describe('tandem jobs', () => {
    test('every jobs command has --help', () => {
      for (const command of [['jobs'], ['jobs', 'list'], ['jobs', 'show'], ['jobs', 'cancel'], ['jobs', 'retry'], ['jobs', 'schedule'], ['jobs', 'schedules'], ['jobs', 'unschedule']]) {
        const result = tandem([...command, '--help'])
        assert.equal(result.status, 0, result.stderr)
        assert.match(result.stdout, /Usage: tandem jobs/)
      }
    })

    test('schedule, schedules and unschedule; a bad rule or input exits 1 naming it, and stores nothing', async () => {
      const id = `cli-schedule-${process.pid}`
      const made = tandem(['jobs', 'schedule', cluster.replicas[1]!.url, id, 'echo', '--cron', '0 3 * * *', '--tz', 'Europe/Paris', '--input', '{"full": true}'])
      assert.equal(made.status, 0, made.stderr)
      assert.match(made.stdout, new RegExp(`schedule ${id} makes a echo job at "0 3 \\* \\* \\*" \\(Europe/Paris\\); next at 20`))
      assert.deepEqual((await db.jobs.schedules.get(id)).input, { full: true })
      const listed = tandem(['jobs', 'schedules', cluster.master.url])
      assert.equal(listed.status, 0, listed.stderr)
      assert.ok(listed.stdout.split('\n').some((line) => line.startsWith(id) && line.includes('Europe/Paris')), listed.stdout)
      for (const [args, message] of [
        [['--cron', '0 3 * * *', '--input', '{not json'], /--input must be JSON/],
        [['--cron', '99 * * * *'], /BAD_REQUEST.*"cron"/],
        [['--every-ms', '10'], /--every-ms must be an integer/],
        [['--every-ms', '5000', '--catch-up', 'sometimes'], /--catch-up/],
      ] as [string[], RegExp][]) {
        const bad = tandem(['jobs', 'schedule', cluster.master.url, `${id}-bad`, 'echo', ...args])
        assert.notEqual(bad.status, 0, args.join(' '))
        assert.match(bad.stderr, message, args.join(' '))
      }
      await assert.rejects(db.jobs.schedules.get(`${id}-bad`), (error) => isTandemClientError(error, 'SCHEDULE_NOT_FOUND'))
      const removed = tandem(['jobs', 'unschedule', cluster.master.url, id])
      assert.equal(removed.status, 0, removed.stderr)
      const again = tandem(['jobs', 'unschedule', cluster.master.url, id])
      assert.equal(again.status, 1)
      assert.match(again.stderr, /SCHEDULE_NOT_FOUND/)
    })

    test('list prints jobs as a table, filtered; --json prints the master’s answer', async () => {
      const job = await (await db.jobs.submit('echo', 'listed')).wait()
      const table = tandem(['jobs', 'list', cluster.replicas[1]!.url, '--name', 'echo', '--limit', '5'])
      assert.equal(table.status, 0, table.stderr)
      const lines = table.stdout.trim().split('\n')
      assert.match(lines[0]!, /^id\s+name\s+state\s+tasks\s+created\s+finished/)
      assert.ok(lines.some((l) => l.startsWith(job.id) && /\becho\b/.test(l) && /\bcompleted\b/.test(l)), table.stdout)
      const json = tandem(['jobs', 'list', cluster.master.url, '--state', 'completed', '--json'])
      assert.equal(json.status, 0, json.stderr)
      const body = JSON.parse(json.stdout) as { jobs: { id: string; state: string }[] }
      assert.ok(body.jobs.some((j) => j.id === job.id))
      assert.ok(body.jobs.every((j) => j.state === 'completed'))
      const bad = tandem(['jobs', 'list', cluster.master.url, '--state', 'sleeping'])
      assert.notEqual(bad.status, 0)
    })

    test('show prints the job and a row per task; an unknown id exits 1 with JOB_NOT_FOUND', async () => {
      const job = await (await db.jobs.submitMany('square', [2, 3])).wait()
      const result = tandem(['jobs', 'show', cluster.master.url, job.id])
      assert.equal(result.status, 0, result.stderr)
      assert.match(result.stdout, new RegExp(`job:\\s+${job.id} \\(square\\)`))
      assert.match(result.stdout, /state:\s+completed/)
      assert.match(result.stdout, /task\s+state\s+attempts\s+worker\s+progress\s+result\s+error/)
      assert.match(result.stdout, /\n0\s+done\s+1\s+\S+\s+\S*\s*4\b/)
      assert.match(result.stdout, /\n1\s+done\s+1\s+\S+\s+\S*\s*9\b/)
      const json = tandem(['jobs', 'show', cluster.master.url, job.id, '--json'])
      assert.deepEqual((JSON.parse(json.stdout) as { results: unknown[] }).results, [4, 9])
      const missing = tandem(['jobs', 'show', cluster.master.url, 'j_nope'])
      assert.equal(missing.status, 1)
      assert.match(missing.stderr, /JOB_NOT_FOUND/)
    })

    test('cancel cancels a running job; cancelling it again exits 1 with JOB_FINISHED', async () => {
      const handle = await db.jobs.submit('hold', {})
      await waitFor(async () => ((await handle.status()).state === 'running' ? true : undefined), 20_000, () => `job ${handle.id} to run`)
      const result = tandem(['jobs', 'cancel', cluster.replicas[0]!.url, handle.id])
      assert.equal(result.status, 0, result.stderr)
      assert.match(result.stdout, new RegExp(`job ${handle.id} is cancelled`))
      assert.equal((await handle.status()).state, 'cancelled')
      const again = tandem(['jobs', 'cancel', cluster.master.url, handle.id])
      assert.equal(again.status, 1)
      assert.match(again.stderr, /JOB_FINISHED/)
    })

    test('retry queues a failed job’s dead tasks again, and the job completes', async () => {
      const file = newFile()
      const handle = await db.jobs.submit('needsFile', { file }, { attempts: 1 })
      await assert.rejects(handle.wait(), (error) => error instanceof JobFailedError && error.job.state === 'failed')
      release(file)
      const result = tandem(['jobs', 'retry', cluster.master.url, handle.id])
      assert.equal(result.status, 0, result.stderr)
      assert.match(result.stdout, new RegExp(`job ${handle.id} is \\w+: its dead and cancelled tasks are queued again`))
      const job = await handle.wait({ timeoutMs: 30_000 })
      assert.deepEqual(job.results, [{ ok: file }])
      const twice = tandem(['jobs', 'retry', cluster.master.url, handle.id, '--json'])
      assert.equal(twice.status, 1)
      assert.match(twice.stderr, /JOB_NOT_RETRYABLE/)
    })
  })
})
