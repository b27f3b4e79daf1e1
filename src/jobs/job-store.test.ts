/**
 * The queue's SQL on a real database: the guards that make a lease and a result count once, and
 * retention that deletes only finished jobs.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openConnection } from '../storage/index.ts'
import { ensureJobSchema, type JobState } from './job-schema.ts'
import { defaultJobOptions } from './job-spec.ts'
import { JobReads, JobWrites, type TaskRow } from './job-store.ts'

function store(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-job-store-'))
  const connection = openConnection(join(dir, 'db.sqlite'))
  ensureJobSchema(connection)
  t.after(() => {
    connection.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const writes = new JobWrites(connection)
  const reads = new JobReads(connection)
  let lsn = 0
  const insert = (id: string, createdAt: number, tasks = 1) =>
    writes.insertJob({ id, name: 'a', options: defaultJobOptions, inputs: Array.from({ length: tasks }, (_, i) => String(i)), lsn: ++lsn, idempotencyKey: undefined, requestHash: id, createdAt, runAfter: createdAt })
  /** A finished job: its tasks done (leased, then ended), the job finished at `finishedAt`. */
  const finished = (id: string, createdAt: number, finishedAt: number, state: JobState = 'completed') => {
    insert(id, createdAt, 2)
    for (const index of [0, 1]) {
      assert.ok(writes.lease(id, index, 1, 1, 'r1', createdAt))
      assert.ok(writes.endLease(id, index, { epoch: 1, token: 1 }, { state: 'done', result: 'null', worker: 'r1' }, finishedAt))
    }
    writes.finishJob(id, state, finishedAt)
  }
  const ids = () => reads.list({ limit: 1000 }).map((r) => r.id).sort()
  const taskJobs = () => [...new Set((connection.prepare('SELECT job_id FROM _tandem_tasks').all() as { job_id: string }[]).map((r) => r.job_id))].sort()
  return { connection, writes, reads, insert, finished, ids, taskJobs }
}

function task(reads: JobReads, id: string, index: number): TaskRow {
  const row = reads.tasks(id)[index]
  assert.ok(row !== undefined, `task ${id}#${index}`)
  return row
}

// ── Retention ────────────────────────────────────────────────────────────

test('expire deletes finished jobs that finished before `before`, with their tasks, and never unfinished ones', (t) => {
  const s = store(t)
  s.finished('old-1', 100, 200)
  s.finished('old-2', 110, 210, 'failed')
  s.finished('recent', 300, 900)
  s.finished('long-running', 50, 800, 'cancelled') // created long ago, finished recently
  s.insert('waiting', 10) // unfinished, and older than anything
  s.insert('running', 20)
  assert.ok(s.writes.lease('running', 0, 1, 1, 'r1', 20))

  assert.equal(s.writes.expire(500, 100, 1000), 2)
  assert.deepEqual(s.ids(), ['long-running', 'recent', 'running', 'waiting'])
  assert.deepEqual(s.taskJobs(), ['long-running', 'recent', 'running', 'waiting'])
  assert.equal(s.writes.expire(500, 100, 1000), 0, 'nothing more to delete')
})

test('expire deletes finished jobs beyond the newest `keep`, counting finished jobs only', (t) => {
  const s = store(t)
  for (let i = 1; i <= 5; i++) s.finished(`done-${i}`, i * 10, 1000 + i)
  s.insert('unfinished-old', 1)
  s.insert('unfinished-new', 100)

  assert.equal(s.writes.expire(0, 2, 1000), 3)
  assert.deepEqual(s.ids(), ['done-4', 'done-5', 'unfinished-new', 'unfinished-old'])
  assert.deepEqual(s.taskJobs(), ['done-4', 'done-5', 'unfinished-new', 'unfinished-old'])
  assert.equal(s.writes.expire(0, 0, 1000), 2)
  assert.deepEqual(s.ids(), ['unfinished-new', 'unfinished-old'])
})

test('expire deletes at most `limit` jobs per call', (t) => {
  const s = store(t)
  for (let i = 1; i <= 5; i++) s.finished(`done-${i}`, i, 10 + i)
  assert.deepEqual([1, 2, 3, 4].map(() => s.writes.expire(1000, 0, 2)), [2, 2, 1, 0])
  assert.deepEqual(s.ids(), [])
  assert.deepEqual(s.taskJobs(), [])
})

// ── Leases ───────────────────────────────────────────────────────────────

test('lease takes only a queued or failed task, and only with a higher token', (t) => {
  const s = store(t)
  s.insert('j', 0, 4)
  assert.equal(s.reads.job('j')?.state, 'queued')

  assert.equal(s.writes.lease('j', 0, 7, 1, 'r1', 5), true)
  const leased = task(s.reads, 'j', 0)
  assert.deepEqual(
    { state: leased.state, lease_epoch: leased.lease_epoch, lease_token: leased.lease_token, worker: leased.worker, started_at: leased.started_at },
    { state: 'leased', lease_epoch: 7, lease_token: 1, worker: 'r1', started_at: 5 },
  )
  assert.equal(s.reads.job('j')?.state, 'running')

  // Already leased: no second lease, whatever the token.
  assert.equal(s.writes.lease('j', 0, 7, 2, 'r2', 6), false)
  assert.deepEqual(task(s.reads, 'j', 0), leased)

  // Failed (waiting for its backoff): leased again only above the token it had.
  assert.ok(s.writes.endLease('j', 0, { epoch: 7, token: 1 }, { state: 'failed', error: 'boom', runAfter: 50 }, 10))
  assert.equal(task(s.reads, 'j', 0).state, 'failed')
  assert.equal(s.writes.lease('j', 0, 8, 1, 'r2', 60), false, 'not with the same token')
  assert.equal(s.writes.lease('j', 0, 8, 0, 'r2', 60), false, 'not with a lower token')
  assert.equal(task(s.reads, 'j', 0).state, 'failed')
  assert.equal(s.writes.lease('j', 0, 8, 2, 'r2', 60), true)
  assert.deepEqual({ ...task(s.reads, 'j', 0) }, { ...task(s.reads, 'j', 0), state: 'leased', lease_epoch: 8, lease_token: 2, worker: 'r2', started_at: 60 })

  // Queued again after a lost lease: the token still only grows.
  assert.ok(s.writes.endLease('j', 0, { epoch: 8, token: 2 }, { state: 'queued', lostLease: true, error: 'lease lost' }, 70))
  assert.equal(task(s.reads, 'j', 0).lost_leases, 1)
  assert.equal(s.writes.lease('j', 0, 8, 2, 'r3', 80), false)
  assert.equal(s.writes.lease('j', 0, 8, 3, 'r3', 80), true)

  // Finished tasks are never leased again.
  assert.ok(s.writes.endLease('j', 0, { epoch: 8, token: 3 }, { state: 'done', result: '1', worker: 'r3' }, 90))
  assert.equal(s.writes.lease('j', 0, 8, 4, 'r1', 100), false)
  assert.ok(s.writes.lease('j', 1, 8, 1, 'r1', 100))
  assert.ok(s.writes.endLease('j', 1, { epoch: 8, token: 1 }, { state: 'dead', error: 'boom', runAfter: 100 }, 100))
  assert.equal(s.writes.lease('j', 1, 8, 2, 'r1', 110), false)
  s.writes.cancel('j', 120)
  assert.equal(task(s.reads, 'j', 2).state, 'cancelled')
  assert.equal(s.writes.lease('j', 2, 8, 1, 'r1', 130), false)
  assert.deepEqual(s.reads.tasks('j').map((r) => r.state), ['done', 'dead', 'cancelled', 'cancelled'])
})

test('endLease changes nothing unless it names the live lease', (t) => {
  const s = store(t)
  s.insert('j', 0, 1)
  assert.ok(s.writes.lease('j', 0, 7, 3, 'r1', 5))
  const before = task(s.reads, 'j', 0)
  const done = { state: 'done', result: '"x"', worker: 'r1' } as const
  assert.equal(s.writes.endLease('j', 0, { epoch: 7, token: 2 }, done, 9), false)
  assert.equal(s.writes.endLease('j', 0, { epoch: 6, token: 3 }, done, 9), false)
  assert.equal(s.writes.endLease('j', 0, { epoch: 8, token: 3 }, { state: 'queued', lostLease: true, error: 'x' }, 9), false)
  assert.deepEqual(task(s.reads, 'j', 0), before)
  assert.equal(s.writes.endLease('j', 0, { epoch: 7, token: 3 }, done, 9), true)
  assert.equal(s.writes.endLease('j', 0, { epoch: 7, token: 3 }, { ...done, result: '"y"' }, 10), false, 'once only')
  const after = task(s.reads, 'j', 0)
  assert.deepEqual({ state: after.state, result: after.result, attempts: after.attempts, finished_at: after.finished_at }, { state: 'done', result: '"x"', attempts: 1, finished_at: 9 })
})

// ── Retry ────────────────────────────────────────────────────────────────

test('retry queues only dead and cancelled tasks, with fresh attempts, keeps their tokens, and reopens the job', (t) => {
  const s = store(t)
  s.insert('j', 0, 4)
  for (const index of [0, 1, 2, 3]) assert.ok(s.writes.lease('j', index, 1, 1, 'r1', 1))
  assert.ok(s.writes.endLease('j', 0, { epoch: 1, token: 1 }, { state: 'done', result: '"zero"', worker: 'r1' }, 2))
  assert.ok(s.writes.endLease('j', 1, { epoch: 1, token: 1 }, { state: 'dead', error: 'boom', runAfter: 2 }, 2))
  assert.ok(s.writes.endLease('j', 2, { epoch: 1, token: 1 }, { state: 'dead', lostLease: true, error: 'lease lost' }, 2))
  s.writes.cancel('j', 3)
  assert.deepEqual(s.reads.tasks('j').map((r) => r.state), ['done', 'dead', 'dead', 'cancelled'])
  assert.equal(s.reads.job('j')?.state, 'cancelled')

  const rows = s.writes.retry('j', 10)
  assert.deepEqual(rows.map((r) => [r.idx, r.state, r.attempts, r.lost_leases, r.error, r.run_after]), [
    [1, 'queued', 0, 0, null, 10],
    [2, 'queued', 0, 0, null, 10],
    [3, 'queued', 0, 0, null, 10],
  ])
  const tasks = s.reads.tasks('j')
  assert.deepEqual(
    tasks.map((r) => ({ state: r.state, attempts: r.attempts, lost_leases: r.lost_leases, error: r.error, worker: r.worker, finished_at: r.finished_at, lease_token: r.lease_token })),
    [
      { state: 'done', attempts: 1, lost_leases: 0, error: null, worker: 'r1', finished_at: 2, lease_token: 1 },
      { state: 'queued', attempts: 0, lost_leases: 0, error: null, worker: null, finished_at: null, lease_token: 1 },
      { state: 'queued', attempts: 0, lost_leases: 0, error: null, worker: null, finished_at: null, lease_token: 1 },
      { state: 'queued', attempts: 0, lost_leases: 0, error: null, worker: null, finished_at: null, lease_token: 1 },
    ],
  )
  assert.equal(tasks[0]?.result, '"zero"')
  const job = s.reads.job('j')
  assert.deepEqual({ state: job?.state, finished_at: job?.finished_at }, { state: 'running', finished_at: null })
  // The fencing token survives the retry: the next lease must be above it.
  assert.equal(s.writes.lease('j', 1, 2, 1, 'r1', 11), false)
  assert.equal(s.writes.lease('j', 1, 2, 2, 'r1', 11), true)

  assert.deepEqual(s.writes.retry('j', 12), [], 'nothing dead or cancelled: nothing changes')
  assert.equal(s.reads.job('j')?.state, 'running')
})

test('retry of a job cancelled before any task started leaves it queued', (t) => {
  const s = store(t)
  s.insert('j', 0, 2)
  s.writes.cancel('j', 5)
  assert.equal(s.reads.job('j')?.state, 'cancelled')
  assert.equal(s.writes.retry('j', 6).length, 2)
  const job = s.reads.job('j')
  assert.deepEqual({ state: job?.state, finished_at: job?.finished_at }, { state: 'queued', finished_at: null })
  assert.deepEqual(s.reads.counts('j'), { queued: 2, leased: 0, done: 0, failed: 0, dead: 0, cancelled: 0 })
})
