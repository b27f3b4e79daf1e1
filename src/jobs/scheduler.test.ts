/**
 * The scheduler as a state machine: messages from replicas in, messages to replicas and rows in
 * the queue's tables out. No sockets: a real SQLite database in a temporary directory, a fake
 * `send` that records what each replica is told, and a clock the test moves. The scheduler
 * defers assignment with setImmediate and expires leases on an interval, so a test waits for
 * outcomes (rows, messages), never for a duration.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import type { Assignment, LeaseRef, MasterMessage } from '../protocol/messages.ts'
import type { Clock } from '../shared/clock.ts'
import { isTandemError } from '../shared/errors.ts'
import { silentLogger } from '../shared/logger.ts'
import { openConnection, type Connection } from '../storage/index.ts'
import { ensureJobSchema } from './job-schema.ts'
import { parseJobSpec } from './job-spec.ts'
import { JobReads, JobWrites, type JobRow, type TaskRow } from './job-store.ts'
import { readJob } from './job-views.ts'
import { Scheduler, type SchedulerOptions } from './scheduler.ts'
import { parseLimit } from './limits.ts'

class TestClock implements Clock {
  t = Date.UTC(2026, 10, 26, 15)

  now(): number {
    return this.t
  }
}

type Tunables = Pick<SchedulerOptions, 'leaseMs' | 'lostLeasesMax' | 'backupAfterMs' | 'retainMs' | 'retainCount' | 'queuedTasksMax'>

const defaults: Tunables = { leaseMs: 100, lostLeasesMax: 3, backupAfterMs: 60_000, retainMs: 7 * 24 * 3600_000, retainCount: 10_000, queuedTasksMax: 100_000 }

type Recorded = Extract<MasterMessage, { type: 'recorded' }>

/** One master's scheduler over a real database, with replicas played by the test. */
class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'tandem-scheduler-'))
  readonly path = join(this.dir, 'db.sqlite')
  readonly connection: Connection
  readonly readConnection: Connection
  readonly writes: JobWrites
  readonly reads: JobReads
  readonly clock = new TestClock()
  /** Every message sent, per replica, in order. */
  readonly sent = new Map<string, MasterMessage[]>()
  /** The LSN each replica has applied (0 when unset). */
  readonly applied = new Map<string, number>()
  epoch = 3
  lsn = 0
  readonly tunables: Tunables
  scheduler: Scheduler

  constructor(tunables: Partial<Tunables>) {
    this.tunables = { ...defaults, ...tunables }
    this.connection = openConnection(this.path)
    this.connection.exec('PRAGMA journal_mode = WAL')
    ensureJobSchema(this.connection)
    this.readConnection = openConnection(this.path, { readOnly: true })
    this.writes = new JobWrites(this.connection)
    this.reads = new JobReads(this.readConnection)
    this.scheduler = this.newScheduler()
  }

  /**
   * The master is replaced (a promotion): the scheduler stops, `between` runs (what happened
   * while no master ran), and a new scheduler at a higher epoch starts from the same tables.
   */
  async replaceMaster(between?: () => void): Promise<void> {
    this.scheduler.close()
    await this.settle()
    between?.()
    this.epoch++
    this.sent.clear()
    this.scheduler = this.newScheduler()
    this.scheduler.start()
  }

  newScheduler(): Scheduler {
    return new Scheduler({
      write: (fn) => this.write(fn),
      reads: this.reads,
      epoch: () => this.epoch,
      send: (nodeId, message) => {
        const messages = this.sent.get(nodeId) ?? []
        messages.push(message)
        this.sent.set(nodeId, messages)
        return true
      },
      appliedLsn: (nodeId) => this.applied.get(nodeId) ?? 0,
      clock: this.clock,
      logger: silentLogger,
      ...this.tunables,
    })
  }

  /**
   * The write pipeline, reduced: writes queue up and run together on a later turn in one
   * transaction (BEGIN IMMEDIATE … COMMIT), each in a savepoint (one that throws is rolled back
   * and rejected alone), and the batch takes the next LSN. As in the real pipeline, what the
   * scheduler does between submitting a write and its commit interleaves with other events.
   */
  write<T>(fn: (writes: JobWrites, nextLsn: number) => T): Promise<{ value: T; lsn: number }> {
    return new Promise((resolve, reject) => {
      this.queued.push((nextLsn) => {
        this.connection.exec('SAVEPOINT request')
        try {
          const value = fn(this.writes, nextLsn)
          this.connection.exec('RELEASE request')
          return () => resolve({ value, lsn: nextLsn })
        } catch (error) {
          this.connection.exec('ROLLBACK TO request')
          this.connection.exec('RELEASE request')
          return () => reject(error instanceof Error ? error : new Error(String(error)))
        }
      })
      if (this.queued.length === 1) setImmediate(() => this.runBatch())
    })
  }

  private readonly queued: ((nextLsn: number) => () => void)[] = []

  private runBatch(): void {
    const batch = this.queued.splice(0)
    this.connection.exec('BEGIN IMMEDIATE')
    const answers = batch.map((run) => run(this.lsn + 1))
    this.connection.exec('COMMIT')
    this.lsn++
    for (const answer of answers) answer()
  }

  submit(body: Record<string, unknown>) {
    return this.scheduler.submit(parseJobSpec(body))
  }

  register(nodeId: string, handlers: string[], concurrency: number, running: LeaseRef[] = [], prefetch?: number): void {
    this.scheduler.receive(nodeId, { type: 'worker', handlers, concurrency, running, ...(prefetch === undefined ? {} : { prefetch }) })
  }

  succeed(nodeId: string, lease: LeaseRef, value: unknown): void {
    this.scheduler.receive(nodeId, { type: 'result', ...ref(lease), ok: true, value: JSON.stringify(value) })
  }

  fail(nodeId: string, lease: LeaseRef, error: string): void {
    this.scheduler.receive(nodeId, { type: 'result', ...ref(lease), ok: false, error })
  }

  assigns(nodeId: string): Assignment[] {
    return (this.sent.get(nodeId) ?? []).filter((m): m is Assignment => m.type === 'assign')
  }

  /** The replica's assignments in task order. */
  assignsByIndex(nodeId: string): Assignment[] {
    return this.assigns(nodeId).sort((x, y) => x.index - y.index)
  }

  cancels(nodeId: string): LeaseRef[] {
    return (this.sent.get(nodeId) ?? []).filter((m) => m.type === 'cancel').map(ref)
  }

  answers(nodeId: string): Recorded[] {
    return (this.sent.get(nodeId) ?? []).filter((m): m is Recorded => m.type === 'recorded')
  }

  /** The answer to the result for `lease`, the latest if several. */
  answerTo(nodeId: string, lease: LeaseRef): Recorded | undefined {
    return this.answers(nodeId)
      .filter((m) => sameLease(m, lease))
      .at(-1)
  }

  job(id: string): JobRow {
    const row = this.reads.job(id)
    assert.ok(row !== undefined, `job ${id} is in the table`)
    return row
  }

  tasks(id: string): TaskRow[] {
    return this.reads.tasks(id)
  }

  task(id: string, index: number): TaskRow {
    const row = this.tasks(id)[index]
    assert.ok(row !== undefined, `task ${id}#${index} is in the table`)
    return row
  }

  /** Lets deferred assignments and their writes run to their end. */
  async settle(turns = 20): Promise<void> {
    for (let i = 0; i < turns; i++) await nextTurn()
  }

  /** Waits for an outcome that a timer (lease tick, backoff) brings about; bounded. */
  async until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
      await sleep(5)
    }
    await this.settle()
  }

  async close(): Promise<void> {
    this.scheduler.close()
    await this.settle()
    this.readConnection.close()
    this.connection.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

function harness(t: TestContext, tunables: Partial<Tunables> = {}): Harness {
  const h = new Harness(tunables)
  t.after(() => h.close())
  return h
}

function ref(lease: LeaseRef): LeaseRef {
  return { job: lease.job, index: lease.index, epoch: lease.epoch, token: lease.token }
}

function sameLease(a: LeaseRef, b: LeaseRef): boolean {
  return a.job === b.job && a.index === b.index && a.epoch === b.epoch && a.token === b.token
}

function only<T>(items: readonly T[], what: string): T {
  assert.equal(items.length, 1, `exactly one ${what}`)
  return items[0]!
}

function countBy(rows: readonly TaskRow[], key: (row: TaskRow) => string): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const row of rows) counts[key(row)] = (counts[key(row)] ?? 0) + 1
  return counts
}

// ── Assignment ───────────────────────────────────────────────────────────

test('tasks go only to registered replicas that have the handler, up to their concurrency', async (t) => {
  const h = harness(t)
  const { id, lsn } = await h.submit({ name: 'resize', inputs: [1, 2, 3, 4, 5] })
  await h.settle()
  assert.deepEqual(countBy(h.tasks(id), (r) => r.state), { queued: 5 }, 'no replica: nothing is leased')

  h.register('r1', ['resize'], 2)
  h.register('r2', ['other'], 8)
  await h.settle()
  assert.equal(h.assigns('r1').length, 2)
  assert.equal(h.assigns('r2').length, 0, 'a replica without the handler gets nothing')
  assert.deepEqual(countBy(h.tasks(id), (r) => `${r.state}:${r.worker}`), { 'leased:r1': 2, 'queued:null': 3 })
  assert.equal(h.job(id).state, 'running')
  for (const a of h.assigns('r1')) {
    assert.deepEqual({ name: a.name, epoch: a.epoch, token: a.token, attempt: a.attempt, lsn: a.lsn }, { name: 'resize', epoch: 3, token: 1, attempt: 1, lsn })
    assert.equal(a.input, h.task(id, a.index).input)
  }

  h.register('r3', ['other', 'resize'], 1)
  await h.settle()
  assert.equal(h.assigns('r1').length, 2, 'r1 is full')
  assert.equal(h.assigns('r3').length, 1)
  assert.deepEqual(countBy(h.tasks(id), (r) => `${r.state}:${r.worker}`), { 'leased:r1': 2, 'leased:r3': 1, 'queued:null': 2 })

  // A result frees a slot, and the slot takes the next waiting task.
  for (const a of h.assigns('r1')) h.succeed('r1', a, a.index)
  await h.settle()
  assert.equal(h.assigns('r1').length, 4)
  assert.equal(h.assigns('r3').length, 1)
  assert.deepEqual(countBy(h.tasks(id), (r) => r.state), { done: 2, leased: 3 })
  assert.equal(new Set([...h.assigns('r1'), ...h.assigns('r3')].map((a) => a.index)).size, 5, 'each task assigned once')
})

test('prefetch: one round queued beyond the slots until the run time is known, then what the slots start in 100 ms; idle slots anywhere first', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2, [], 3)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1, 2, 3, 4, 5, 6, 7] })
  await h.settle()
  assert.equal(h.assigns('r1').length, 4, 'two slots, and one round (two) queued there')
  // A replica that joins with idle slots gets the next tasks, not the busy one's queue.
  h.register('r2', ['a'], 2, [], 0)
  await h.settle()
  assert.equal(h.assigns('r2').length, 2)
  // A task ran 1 ms: r1's slots get through far more than its prefetch in 100 ms, so it holds its all.
  const first = h.assignsByIndex('r1')[0]!
  h.scheduler.receive('r1', { type: 'result', ...ref(first), ok: true, value: '0', ms: 1 })
  await h.settle()
  assert.equal(h.assigns('r1').length, 6, 'refilled to 2 slots + 3 queued')
  assert.equal(new Set([...h.assigns('r1'), ...h.assigns('r2')].map((a) => a.index)).size, 8, 'each task assigned once')
  assert.deepEqual(countBy(h.tasks(id), (r) => r.state), { done: 1, leased: 7 })

  // Tasks that run 5 s: nothing waits behind them on a replica.
  const slow = await h.submit({ name: 'a', inputs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] })
  for (const a of [...h.assigns('r1'), ...h.assigns('r2')].filter((x) => x.job === id && h.task(id, x.index).state === 'leased')) {
    h.scheduler.receive(h.assigns('r1').includes(a) ? 'r1' : 'r2', { type: 'result', ...ref(a), ok: true, value: '0', ms: 1 })
  }
  await h.settle()
  const onR1 = () => h.assigns('r1').filter((a) => a.job === slow.id && h.task(slow.id, a.index).state === 'leased')
  assert.equal(onR1().length, 4, 'one round queued while the run time is unknown')
  // Five seconds pass, the replicas acknowledging all along (in the same turn: the lease tick sees no gap).
  h.clock.t += 5000
  h.scheduler.renew('r1')
  h.scheduler.renew('r2')
  h.scheduler.receive('r1', { type: 'result', ...ref(onR1()[0]!), ok: true, value: '0', ms: 5000 })
  await h.settle()
  assert.equal(onR1().length, 3, 'not refilled: a 5 s task would queue behind the running ones')
  h.scheduler.receive('r1', { type: 'result', ...ref(onR1()[0]!), ok: true, value: '0', ms: 5000 })
  h.scheduler.receive('r1', { type: 'result', ...ref(onR1()[0]!), ok: true, value: '0', ms: 5000 })
  await h.settle()
  assert.equal(onR1().length, 2, 'down to its slots, and held there')
})

test('a replica that does not say its prefetch (an older release) gets no more leases than its slots; a hostile one is held to 1,024', async (t) => {
  const h = harness(t)
  h.register('old', ['a'], 2)
  await h.submit({ name: 'a', inputs: Array.from({ length: 5 }, (_, i) => i) })
  await h.settle()
  assert.equal(h.assigns('old').length, 2)
  for (const hostile of [-5, Number.NaN, 'lots', 1e9] as unknown[]) {
    h.scheduler.receive('hostile', { type: 'worker', handlers: ['b'], concurrency: 1, prefetch: hostile as number, running: [] })
    const worker = (h.scheduler.stats()['workers'] as { id: string; prefetch: number }[]).find((w) => w.id === 'hostile')
    assert.equal(worker?.prefetch, hostile === 1e9 ? 1024 : 0, String(hostile))
  }
})

test('a task goes first to a replica that has already applied the job', async (t) => {
  const h = harness(t)
  h.register('behind', ['a'], 1)
  h.register('caught-up', ['a'], 1)
  h.applied.set('behind', 0)
  h.applied.set('caught-up', 1_000)
  const first = await h.submit({ name: 'a', input: 1 })
  await h.settle()
  assert.equal(h.task(first.id, 0).worker, 'caught-up')
  assert.equal(h.assigns('behind').length, 0)

  // A replica that is behind still runs jobs when it is the one with a free slot.
  const second = await h.submit({ name: 'a', input: 2 })
  await h.settle()
  assert.equal(h.task(second.id, 0).worker, 'behind')
})

test('waiting tasks run in priority order (higher first), then in the order they were submitted', async (t) => {
  const h = harness(t)
  await h.submit({ name: 'a', inputs: ['low-0', 'low-1'] })
  await h.submit({ name: 'a', input: 'urgent', priority: 5 })
  await h.submit({ name: 'a', input: 'low-2' })
  await h.submit({ name: 'a', input: 'background', priority: -1 })
  await h.submit({ name: 'a', input: 'high', priority: 2 })
  h.register('r1', ['a'], 1)
  const order: unknown[] = []
  for (let i = 0; i < 6; i++) {
    await h.settle()
    const assigned = h.assigns('r1')
    assert.equal(assigned.length, i + 1, 'one slot: one task at a time')
    const a = assigned[i]!
    order.push(JSON.parse(a.input))
    h.succeed('r1', a, null)
  }
  assert.deepEqual(order, ['urgent', 'high', 'low-0', 'low-1', 'low-2', 'background'])
})

// ── Results ──────────────────────────────────────────────────────────────

test('a result under the live lease is recorded once, and the job completes with its results', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2)
  const { id } = await h.submit({ name: 'a', inputs: [1, 2] })
  await h.settle()
  const [a0, a1] = h.assignsByIndex('r1')
  assert.ok(a0 !== undefined && a1 !== undefined)
  const isFinished = h.scheduler.waitFinished(id, 10_000)

  h.succeed('r1', a0, { n: 1 })
  h.succeed('r1', a0, { n: 'again' }) // the same result twice, before the first is written
  await h.settle()
  const answers0 = h.answers('r1').filter((m) => sameLease(m, a0))
  assert.deepEqual(answers0.map((m) => m.accepted).sort(), [false, true], 'one accepted, one rejected')
  const row0 = h.task(id, 0)
  assert.deepEqual({ state: row0.state, result: row0.result, worker: row0.worker, attempts: row0.attempts, error: row0.error, finished_at: row0.finished_at }, { state: 'done', result: '{"n":1}', worker: 'r1', attempts: 1, error: null, finished_at: h.clock.t })
  assert.equal(h.job(id).state, 'running', 'one task is still running')
  assert.equal(h.job(id).finished_at, null)

  h.clock.t += 5
  h.succeed('r1', a1, { n: 2 })
  await h.settle()
  assert.equal(await isFinished, true)
  assert.equal(h.job(id).state, 'completed')
  assert.equal(h.job(id).finished_at, h.clock.t)
  const view = readJob(h.reads, id, new Map())
  assert.deepEqual(view?.results, [{ n: 1 }, { n: 2 }])
  assert.deepEqual(view?.counts, { total: 2, queued: 0, running: 0, done: 2, failed: 0, dead: 0, cancelled: 0 })
})

test('a second result for a recorded task is rejected and changes nothing', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 1 })
  await h.settle()
  const a = only(h.assigns('r1'), 'assignment')
  h.succeed('r1', a, 'first')
  await h.settle()
  assert.equal(h.answerTo('r1', a)?.accepted, true)
  const tasks = h.tasks(id)
  const job = h.job(id)

  h.clock.t += 1000
  h.succeed('r1', a, 'second')
  h.fail('r1', a, 'late failure')
  await h.settle()
  const answers = h.answers('r1').filter((m) => sameLease(m, a))
  assert.deepEqual(answers.map((m) => m.accepted), [true, false, false])
  assert.deepEqual(h.tasks(id), tasks)
  assert.deepEqual(h.job(id), job)
  assert.equal(h.task(id, 0).result, '"first"')
})

test('a result naming an old token or an old epoch is rejected and changes nothing', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 1 })
  await h.settle()
  const a = only(h.assigns('r1'), 'assignment')
  assert.deepEqual({ epoch: a.epoch, token: a.token }, { epoch: 3, token: 1 })
  const before = h.tasks(id)

  const stale = [
    { ...ref(a), token: 0 },
    { ...ref(a), epoch: 2 },
    { ...ref(a), token: 2 },
    { ...ref(a), epoch: 4 },
  ]
  for (const lease of stale) h.succeed('r1', lease, 'stale')
  await h.settle()
  for (const lease of stale) assert.equal(h.answerTo('r1', lease)?.accepted, false, `rejected: ${JSON.stringify(lease)}`)
  assert.deepEqual(h.tasks(id), before, 'the task is still leased, untouched')

  h.succeed('r1', a, 'live')
  await h.settle()
  assert.equal(h.answerTo('r1', a)?.accepted, true)
  assert.equal(h.task(id, 0).result, '"live"')
  assert.equal(h.job(id).state, 'completed')
})

test('a failing task waits out its backoff, runs again, and after its attempts is dead; the job fails with its error', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 1, attempts: 2, backoff: { type: 'fixed', delay_ms: 20 } })
  await h.settle()
  const first = only(h.assigns('r1'), 'assignment')
  h.fail('r1', first, 'boom 1')
  await h.settle()
  assert.equal(h.answerTo('r1', first)?.accepted, true)
  const failed = h.task(id, 0)
  assert.deepEqual(
    { state: failed.state, attempts: failed.attempts, error: failed.error, run_after: failed.run_after, finished_at: failed.finished_at },
    { state: 'failed', attempts: 1, error: 'boom 1', run_after: h.clock.t + 20, finished_at: null },
  )
  assert.equal(h.assigns('r1').length, 1, 'not run again before its backoff')
  assert.equal(h.job(id).state, 'running')

  h.clock.t += 20
  await h.until(() => h.assigns('r1').length === 2, 'the task runs again')
  const second = h.assigns('r1')[1]!
  assert.deepEqual({ index: second.index, token: second.token, attempt: second.attempt }, { index: 0, token: 2, attempt: 2 })
  assert.equal(h.task(id, 0).state, 'leased')

  h.fail('r1', second, 'boom 2')
  await h.settle()
  const dead = h.task(id, 0)
  assert.deepEqual(
    { state: dead.state, attempts: dead.attempts, error: dead.error, finished_at: dead.finished_at },
    { state: 'dead', attempts: 2, error: 'boom 2', finished_at: h.clock.t },
  )
  assert.equal(h.job(id).state, 'failed')
  assert.equal(h.job(id).finished_at, h.clock.t)
  assert.deepEqual(readJob(h.reads, id, new Map())?.errors, [{ index: 0, error: 'boom 2', attempts: 2 }])
  h.clock.t += 1000
  await h.settle()
  assert.equal(h.assigns('r1').length, 2, 'a dead task never runs again')
})

// ── Leases ───────────────────────────────────────────────────────────────

test('a lease not renewed expires: the task goes to another replica under a higher token, and is dead after lostLeasesMax losses', async (t) => {
  const h = harness(t, { leaseMs: 100, lostLeasesMax: 2 })
  h.register('r1', ['a'], 1)
  h.register('r2', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 1 })
  await h.settle()
  const holder = h.task(id, 0).worker
  assert.ok(holder === 'r1' || holder === 'r2')
  const other = holder === 'r1' ? 'r2' : 'r1'
  const first = only(h.assigns(holder), 'assignment')

  // The holder goes silent; the other replica keeps acknowledging.
  h.clock.t += 101
  h.scheduler.renew(other)
  await h.until(() => h.assigns(other).length === 1, 'the task is assigned to the other replica')
  const second = only(h.assigns(other), 'assignment')
  assert.equal(second.token, first.token + 1, 'the token grows')
  const moved = h.task(id, 0)
  assert.deepEqual(
    { state: moved.state, worker: moved.worker, lease_token: moved.lease_token, lost_leases: moved.lost_leases, attempts: moved.attempts },
    { state: 'leased', worker: other, lease_token: 2, lost_leases: 1, attempts: 0 },
  )
  assert.equal(h.cancels(holder).length, 0, 'no cancel to a replica that stopped answering')

  // The silent replica comes back with its result: too late.
  h.succeed(holder, first, 'late')
  await h.settle()
  assert.equal(h.answerTo(holder, first)?.accepted, false)
  assert.equal(h.task(id, 0).state, 'leased')
  assert.equal(h.task(id, 0).result, null)

  // The second replica goes silent too: the second loss kills the task.
  h.clock.t += 101
  await h.until(() => h.task(id, 0).state !== 'leased', 'the second lease expires')
  const dead = h.task(id, 0)
  assert.equal(dead.state, 'dead')
  assert.equal(dead.lost_leases, 2)
  assert.match(dead.error ?? '', /lease lost/)
  assert.equal(h.job(id).state, 'failed')
  h.succeed(other, second, 'late too')
  await h.settle()
  assert.equal(h.answerTo(other, second)?.accepted, false)
  assert.equal(h.task(id, 0).state, 'dead')
})

test('a replica registering again loses at once the leases it does not name, keeps the ones it names, and is told to cancel named leases that are not live', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1] })
  await h.settle()
  const [a0, a1] = h.assignsByIndex('r1')
  assert.ok(a0 !== undefined && a1 !== undefined)

  // It restarted and no longer runs task 1; the clock has not moved: this is not an expiry.
  h.register('r1', ['a'], 2, [ref(a0)])
  await h.settle()
  assert.equal(h.cancels('r1').length, 0)
  const kept = h.task(id, 0)
  assert.deepEqual({ state: kept.state, lease_token: kept.lease_token, lost_leases: kept.lost_leases }, { state: 'leased', lease_token: 1, lost_leases: 0 })
  const lost = h.task(id, 1)
  assert.equal(lost.lost_leases, 1)
  assert.equal(lost.state, 'leased', 'queued again and assigned again')
  assert.equal(lost.lease_token, 2)
  const a1again = h.assigns('r1').find((a) => a.index === 1 && a.token === 2)
  assert.ok(a1again !== undefined, 'task 1 assigned again under token 2')

  // It names the old lease of task 1 too (and one that never existed): those are cancelled.
  const bogus = { ...ref(a0), token: 9 }
  h.register('r1', ['a'], 2, [ref(a0), ref(a1), ref(a1again), bogus])
  await h.settle()
  assert.deepEqual(h.cancels('r1'), [ref(a1), bogus])
  assert.equal(h.task(id, 0).lease_token, 1, 'the named live leases are kept')
  assert.equal(h.task(id, 1).lease_token, 2)
  assert.equal(h.task(id, 1).lost_leases, 1)

  h.succeed('r1', a0, 0)
  h.succeed('r1', a1again, 1)
  await h.settle()
  assert.equal(h.answerTo('r1', a0)?.accepted, true)
  assert.equal(h.answerTo('r1', a1again)?.accepted, true)
  assert.equal(h.job(id).state, 'completed')
})

// ── Cancel and retry ─────────────────────────────────────────────────────

test('cancel marks every unfinished task cancelled, tells the replicas running them, and frees their slots', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1, 2] })
  await h.settle()
  const running = h.assignsByIndex('r1')
  assert.equal(running.length, 2)
  const events: string[] = []
  h.scheduler.subscribe(id, (e) => {
    if (e.event === 'job') events.push(e.data.state)
  })

  await h.scheduler.cancel(id)
  await h.settle()
  assert.deepEqual(h.tasks(id).map((r) => r.state), ['cancelled', 'cancelled', 'cancelled'])
  assert.ok(h.tasks(id).every((r) => r.finished_at === h.clock.t))
  assert.equal(h.job(id).state, 'cancelled')
  assert.equal(h.job(id).finished_at, h.clock.t)
  assert.deepEqual([...h.cancels('r1')].sort((x, y) => x.index - y.index), running.map(ref))
  assert.deepEqual(events, ['cancelled'])

  // A result that was on its way is rejected.
  h.succeed('r1', running[0]!, 'late')
  await h.settle()
  assert.equal(h.answerTo('r1', running[0]!)?.accepted, false)
  assert.equal(h.task(id, 0).state, 'cancelled')

  // The slots are free, and the cancelled waiting task is not among what fills them.
  const next = await h.submit({ name: 'a', inputs: [0, 1] })
  await h.settle()
  const assigned = h.assigns('r1').slice(2)
  assert.deepEqual(assigned.map((a) => a.job), [next.id, next.id])
  assert.deepEqual(countBy(h.tasks(next.id), (r) => r.state), { leased: 2 })

  await assert.rejects(h.scheduler.cancel(id), (e) => isTandemError(e, 'JOB_FINISHED'))
  await assert.rejects(h.scheduler.cancel('j_missing'), (e) => isTandemError(e, 'JOB_NOT_FOUND'))
})

test('retry queues dead tasks again with fresh attempts, and the job runs to completion', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1], attempts: 1 })
  await h.settle()
  const [a0, a1] = h.assignsByIndex('r1')
  assert.ok(a0 !== undefined && a1 !== undefined)
  await assert.rejects(h.scheduler.retry(id), (e) => isTandemError(e, 'JOB_NOT_RETRYABLE'), 'nothing dead yet')
  h.succeed('r1', a0, 'zero')
  h.fail('r1', a1, 'boom')
  await h.settle()
  assert.equal(h.task(id, 1).state, 'dead')
  assert.equal(h.job(id).state, 'failed')

  assert.equal(await h.scheduler.retry(id), 1)
  const requeued = h.task(id, 1)
  assert.deepEqual(
    { attempts: requeued.attempts, error: requeued.error, lost_leases: requeued.lost_leases, finished_at: requeued.finished_at },
    { attempts: 0, error: null, lost_leases: 0, finished_at: null },
  )
  assert.equal(h.task(id, 0).state, 'done', 'done tasks stay done')
  assert.equal(h.task(id, 0).result, '"zero"')
  assert.equal(h.job(id).finished_at, null)
  await h.settle()
  const again = h.assigns('r1').slice(2)
  const a1again = only(again, 'new assignment')
  assert.deepEqual({ index: a1again.index, token: a1again.token, attempt: a1again.attempt }, { index: 1, token: 2, attempt: 1 })
  assert.equal(h.job(id).state, 'running')

  h.succeed('r1', a1again, 'one')
  await h.settle()
  assert.equal(h.answerTo('r1', a1again)?.accepted, true)
  assert.equal(h.job(id).state, 'completed')
  assert.deepEqual(readJob(h.reads, id, new Map())?.results, ['zero', 'one'])
  await assert.rejects(h.scheduler.retry(id), (e) => isTandemError(e, 'JOB_NOT_RETRYABLE'))
  await assert.rejects(h.scheduler.retry('j_missing'), (e) => isTandemError(e, 'JOB_NOT_FOUND'))
})

test('retry after cancel runs the cancelled tasks', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1] })
  await h.settle()
  const first = only(h.assigns('r1'), 'assignment')
  await h.scheduler.cancel(id)
  await h.settle()
  assert.equal(await h.scheduler.retry(id), 2)
  assert.deepEqual(countBy(h.tasks(id), (r) => r.state), { queued: 2 })
  assert.equal(h.job(id).state, 'queued')
  assert.equal(h.job(id).finished_at, null)
  for (let i = 0; i < 2; i++) {
    await h.settle()
    const a = h.assigns('r1').at(-1)!
    assert.notDeepEqual(ref(a), ref(first))
    h.succeed('r1', a, a.index)
    await h.settle()
    assert.equal(h.answerTo('r1', a)?.accepted, true)
  }
  assert.equal(h.job(id).state, 'completed')
  assert.deepEqual(readJob(h.reads, id, new Map())?.results, [0, 1])
})

// ── A new master ─────────────────────────────────────────────────────────

test('a new master carries on from the tables: waiting tasks are assigned, a named lease is kept, an unnamed one expires after the grace', async (t) => {
  const h = harness(t, { leaseMs: 100 })
  h.register('r1', ['a'], 1)
  h.register('r2', ['a'], 1)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1, 2] })
  await h.settle()
  const onR1 = only(h.assigns('r1'), 'assignment on r1')
  const onR2 = only(h.assigns('r2'), 'assignment on r2')
  assert.deepEqual(countBy(h.tasks(id), (r) => r.state), { leased: 2, queued: 1 })

  // The master is replaced (a promotion): a new scheduler, a higher epoch, the same tables.
  await h.replaceMaster()

  h.register('r1', ['a'], 1, [ref(onR1)]) // still runs its task, from the old epoch
  h.register('r3', ['a'], 2)
  await h.settle()
  assert.equal(h.cancels('r1').length, 0, 'the named lease is live under the new master')
  const waiting = only(h.assigns('r3'), 'assignment of the waiting task')
  const waitingIndex = [0, 1, 2].find((i) => i !== onR1.index && i !== onR2.index)
  assert.deepEqual({ index: waiting.index, epoch: waiting.epoch, token: waiting.token }, { index: waitingIndex, epoch: 4, token: 1 })

  // r2 never comes back: after one lease period its lease expires and r3 takes the task; r1,
  // acknowledging, keeps its lease from the old epoch (and its slot: r3 is the free one).
  assert.equal(h.task(id, onR2.index).state, 'leased')
  h.clock.t += 101
  h.scheduler.renew('r1')
  h.scheduler.renew('r3')
  await h.until(() => h.assigns('r3').length === 2, 'the unnamed lease expires and is assigned again')
  const taken = h.assigns('r3')[1]!
  assert.deepEqual({ index: taken.index, epoch: taken.epoch, token: taken.token }, { index: onR2.index, epoch: 4, token: onR2.token + 1 })
  assert.equal(h.task(id, onR2.index).lost_leases, 1)
  assert.equal(h.task(id, onR2.index).worker, 'r3')

  assert.equal(h.task(id, onR1.index).state, 'leased')
  assert.equal(h.task(id, onR1.index).lost_leases, 0)

  h.succeed('r1', onR1, 'from the old epoch')
  await h.settle()
  assert.equal(h.answerTo('r1', onR1)?.accepted, true)
  assert.equal(h.task(id, onR1.index).state, 'done')
  assert.equal(h.task(id, onR1.index).result, '"from the old epoch"')
  h.succeed('r3', waiting, 'w')
  h.succeed('r3', taken, 't')
  await h.settle()
  assert.equal(h.job(id).state, 'completed')
  // r2's old result, if it ever arrives, is rejected.
  h.succeed('r2', onR2, 'too late')
  await h.settle()
  assert.equal(h.answerTo('r2', onR2)?.accepted, false)
  assert.equal(h.task(id, onR2.index).result, '"t"')
})

test('a new master expires at once a lease from the tables that its replica does not name', async (t) => {
  const h = harness(t, { leaseMs: 100 })
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 0 })
  await h.settle()
  const old = only(h.assigns('r1'), 'assignment')
  await h.replaceMaster()

  h.register('r1', ['a'], 1, []) // restarted: it holds nothing
  await h.settle()
  const again = only(h.assigns('r1'), 'new assignment')
  assert.deepEqual({ epoch: again.epoch, token: again.token }, { epoch: 4, token: old.token + 1 })
  assert.equal(h.task(id, 0).lost_leases, 1)
  h.succeed('r1', old, 'old')
  h.succeed('r1', again, 'new')
  await h.settle()
  assert.equal(h.answerTo('r1', old)?.accepted, false)
  assert.equal(h.answerTo('r1', again)?.accepted, true)
  assert.equal(h.task(id, 0).result, '"new"')
})

// ── Backup copies ────────────────────────────────────────────────────────

/** Two tasks on r1 and r2; r1's finishes in 10 ms, r2's straggles past backupAfterMs. */
async function straggler(t: TestContext) {
  const h = harness(t, { leaseMs: 100, backupAfterMs: 1000 })
  h.register('r1', ['a'], 1)
  h.register('r2', ['a'], 1)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1] })
  await h.settle()
  const fast = only(h.assigns('r1'), 'assignment on r1')
  const slow = only(h.assigns('r2'), 'assignment on r2')
  h.clock.t += 10
  h.succeed('r1', fast, 'fast')
  await h.settle()
  assert.equal(h.assigns('r1').length, 1, 'no backup before backupAfterMs')
  // Both replicas keep acknowledging; time passes.
  h.clock.t += 1000
  h.scheduler.renew('r1')
  h.scheduler.renew('r2')
  await h.until(() => h.assigns('r1').length === 2, 'a backup copy is assigned to the free replica')
  const backup = h.assigns('r1')[1]!
  assert.deepEqual(
    { job: backup.job, index: backup.index, epoch: backup.epoch, token: backup.token, input: backup.input },
    { job: id, index: slow.index, epoch: slow.epoch, token: slow.token + 1, input: slow.input },
  )
  const row = h.task(id, slow.index)
  assert.deepEqual({ state: row.state, worker: row.worker, lease_token: row.lease_token }, { state: 'leased', worker: 'r2', lease_token: slow.token }, 'the table keeps the primary lease')
  return { h, id, slow, backup }
}

test('a straggler gets a backup copy on another free replica; the copy that finishes first wins and the other is cancelled', async (t) => {
  const { h, id, slow, backup } = await straggler(t)
  h.succeed('r1', backup, 'from the backup')
  await h.settle()
  assert.equal(h.answerTo('r1', backup)?.accepted, true)
  const row = h.task(id, slow.index)
  assert.deepEqual({ state: row.state, worker: row.worker, result: row.result }, { state: 'done', worker: 'r1', result: '"from the backup"' })
  assert.deepEqual(h.cancels('r2'), [ref(slow)])
  assert.equal(h.job(id).state, 'completed')

  h.succeed('r2', slow, 'from the primary')
  await h.settle()
  assert.equal(h.answerTo('r2', slow)?.accepted, false)
  assert.equal(h.task(id, slow.index).result, '"from the backup"')
  assert.equal(h.task(id, slow.index).worker, 'r1')
})

test('when the primary finishes before its backup copy, the copy is cancelled and its result rejected', async (t) => {
  const { h, id, slow, backup } = await straggler(t)
  h.succeed('r2', slow, 'from the primary')
  await h.settle()
  assert.equal(h.answerTo('r2', slow)?.accepted, true)
  assert.deepEqual(h.cancels('r1'), [ref(backup)])
  const row = h.task(id, slow.index)
  assert.deepEqual({ state: row.state, worker: row.worker, result: row.result }, { state: 'done', worker: 'r2', result: '"from the primary"' })
  h.succeed('r1', backup, 'from the backup')
  await h.settle()
  assert.equal(h.answerTo('r1', backup)?.accepted, false)
  assert.equal(h.task(id, slow.index).result, '"from the primary"')
})

test('a backup copy waits for twice the mean task time when that is longer than backupAfterMs', async (t) => {
  const h = harness(t, { leaseMs: 200, backupAfterMs: 10 })
  h.register('r1', ['a'], 1)
  h.register('r2', ['a'], 1)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1] })
  await h.settle()
  const fast = only(h.assigns('r1'), 'assignment on r1')
  const slow = only(h.assigns('r2'), 'assignment on r2')
  const advance = (ms: number) => {
    h.clock.t += ms
    h.scheduler.renew('r1')
    h.scheduler.renew('r2')
  }
  advance(400) // r1's task took 400 ms: the mean is 400, a backup is due at 800
  h.succeed('r1', fast, 'fast')
  await h.settle()
  advance(300) // 700 ms in: not yet
  await sleep(120) // a few lease ticks (every leaseMs / 4): time for a wrong backup to show
  await h.settle()
  assert.equal(h.assigns('r1').length, 1, 'no backup before twice the mean')
  advance(100) // 800 ms in
  await h.until(() => h.assigns('r1').length === 2, 'a backup copy once twice the mean has passed')
  assert.equal(h.assigns('r1')[1]!.index, slow.index)
  assert.equal(h.task(id, slow.index).state, 'leased')
})

test('a backup copy never runs on the replica that runs the primary', async (t) => {
  const h = harness(t, { leaseMs: 200, backupAfterMs: 100 })
  h.register('r1', ['a'], 2)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1] })
  await h.settle()
  const [fast, slow] = h.assigns('r1')
  assert.ok(fast !== undefined && slow !== undefined)
  const advance = (ms: number) => {
    h.clock.t += ms
    h.scheduler.renew('r1')
    h.scheduler.renew('r2')
  }
  advance(10)
  h.succeed('r1', fast, 'fast')
  await h.settle()
  advance(1000) // long overdue, but r1's free slot is on the straggler's own replica
  await sleep(120)
  await h.settle()
  assert.equal(h.assigns('r1').length, 2, 'no copy on the same replica')
  h.register('r2', ['a'], 1)
  await h.until(() => h.assigns('r2').length === 1, 'the copy goes to the new replica')
  const backup = h.assigns('r2')[0]!
  assert.deepEqual({ index: backup.index, token: backup.token }, { index: slow.index, token: slow.token + 1 })
  assert.equal(h.task(id, slow.index).worker, 'r1')
})

// ── Idempotency ──────────────────────────────────────────────────────────

test('a submission repeated with its idempotency key is replayed; the key with a different job is refused', async (t) => {
  const h = harness(t)
  const body = { name: 'a', inputs: [1, 2], idempotency_key: 'nightly-2026-11-26' }
  const first = await h.submit(body)
  assert.equal(first.replayed, false)
  const again = await h.submit(body)
  assert.deepEqual(again, { id: first.id, state: 'queued', tasks: 2, lsn: first.lsn, replayed: true })
  await assert.rejects(h.submit({ ...body, inputs: [1, 3] }), (e) => isTandemError(e, 'IDEMPOTENCY_KEY_REUSED'))
  await assert.rejects(h.submit({ ...body, priority: 1 }), (e) => isTandemError(e, 'IDEMPOTENCY_KEY_REUSED'))
  assert.deepEqual(h.reads.list({ limit: 10 }).map((r) => r.id), [first.id])
  assert.equal(h.tasks(first.id).length, 2)

  // A replay queues nothing: only the first submission's two tasks run.
  h.register('r1', ['a'], 10)
  await h.settle()
  assert.equal(h.assigns('r1').length, 2)
})

test('the same submission twice at once makes one job', async (t) => {
  const h = harness(t)
  const body = { name: 'a', input: 1, idempotency_key: 'once' }
  const [first, second] = await Promise.all([h.submit(body), h.submit(body)])
  assert.equal(second.id, first.id)
  assert.deepEqual([first.replayed, second.replayed], [false, true])
  assert.equal(h.reads.list({ limit: 10 }).length, 1)
})

// ── Races with writes in flight ──────────────────────────────────────────

test('cancel racing the last result: the job ends in one state that agrees with its tasks', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 1 })
  await h.settle()
  const a = only(h.assigns('r1'), 'assignment')
  const finishes: string[] = []
  h.scheduler.subscribe(id, (e) => {
    if (e.event === 'job') finishes.push(e.data.state)
  })

  // The result arrives, and a client cancels before the result's write commits.
  h.succeed('r1', a, 'done')
  const cancelled = h.scheduler.cancel(id).then(
    () => 'cancelled',
    (error: unknown) => (isTandemError(error, 'JOB_FINISHED') ? 'refused' : 'other error'),
  )
  const outcome = await cancelled
  await h.settle()
  const job = h.job(id)
  const task = h.task(id, 0)
  const accepted = h.answerTo('r1', a)?.accepted
  if (outcome === 'cancelled') {
    assert.deepEqual({ job: job.state, task: task.state, accepted, finishes }, { job: 'cancelled', task: 'cancelled', accepted: false, finishes: ['cancelled'] })
  } else {
    assert.deepEqual({ outcome, job: job.state, task: task.state, accepted, finishes }, { outcome: 'refused', job: 'completed', task: 'done', accepted: true, finishes: ['completed'] })
  }
})

test('cancel racing an assignment: the task ends cancelled, and a replica that was sent it is told to cancel', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const { id } = await h.submit({ name: 'a', input: 1 })
  // Let the assignment start (its lease write queued), then cancel before it commits.
  await nextTurn()
  await h.scheduler.cancel(id)
  await h.settle()
  assert.equal(h.task(id, 0).state, 'cancelled')
  assert.equal(h.job(id).state, 'cancelled')
  const sent = h.assigns('r1').map(ref)
  assert.deepEqual(h.cancels('r1'), sent, 'every assignment sent is cancelled')
  // Its slot is free again.
  const next = await h.submit({ name: 'a', input: 2 })
  await h.settle()
  assert.equal(h.task(next.id, 0).worker, 'r1')
})

test('retry racing the last running task\'s result: the job is not finished while its retried task waits', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2)
  const { id } = await h.submit({ name: 'a', inputs: [0, 1], attempts: 1 })
  await h.settle()
  const [a0, a1] = h.assignsByIndex('r1')
  assert.ok(a0 !== undefined && a1 !== undefined)
  h.fail('r1', a0, 'boom')
  await h.settle()
  assert.equal(h.task(id, 0).state, 'dead')
  assert.equal(h.job(id).state, 'running', 'task 1 still runs')
  const finishes: string[] = []
  h.scheduler.subscribe(id, (e) => {
    if (e.event === 'job') finishes.push(e.data.state)
  })

  // A client retries the dead task; task 1's result arrives before the retry's write commits.
  const retried = h.scheduler.retry(id)
  h.succeed('r1', a1, 'one')
  assert.equal(await retried, 1)
  await h.settle()
  assert.equal(h.answerTo('r1', a1)?.accepted, true)
  const job = h.job(id)
  const tasks = h.tasks(id).map((r) => r.state)
  assert.ok(tasks[0] === 'queued' || tasks[0] === 'leased', `task 0 runs again (${tasks[0]})`)
  assert.deepEqual({ state: job.state, finished_at: job.finished_at }, { state: 'running', finished_at: null }, `the job is not finished while task 0 waits; tasks: ${tasks.join(', ')}`)
  assert.ok(!finishes.includes('failed'), `no 'failed' event for a job that runs on: ${finishes.join(', ')}`)

  const again = h.assigns('r1').find((a) => a.index === 0 && a.token > a0.token)
  assert.ok(again !== undefined, 'task 0 is assigned again')
  h.succeed('r1', again, 'zero')
  await h.settle()
  assert.equal(h.job(id).state, 'completed')
  assert.deepEqual(readJob(h.reads, id, new Map())?.results, ['zero', 'one'])
})

// ── Deduplication ────────────────────────────────────────────────────────

test('dedupe drop: while the key\'s job is unfinished, a submission answers it instead; once it finished, the key takes a new job', async (t) => {
  const h = harness(t)
  const first = await h.submit({ name: 'a', input: 1, dedupe: { key: 'report:42' } })
  const again = await h.submit({ name: 'a', input: 2, dedupe: { key: 'report:42' } })
  assert.deepEqual({ id: again.id, deduplicated: again.deduplicated, replayed: again.replayed }, { id: first.id, deduplicated: true, replayed: false })
  const other = await h.submit({ name: 'a', input: 3, dedupe: { key: 'report:43' } })
  assert.notEqual(other.id, first.id, 'another key is another job')
  assert.equal(h.reads.list({ limit: 10 }).length, 2, 'the dropped submission stored nothing')
  assert.equal(h.task(first.id, 0).input, '1', 'the live job keeps its input')

  h.register('r1', ['a'], 2)
  await h.settle()
  for (const a of h.assigns('r1')) h.succeed('r1', a, a.input)
  await h.settle()
  assert.equal(h.job(first.id).state, 'completed')
  const after = await h.submit({ name: 'a', input: 4, dedupe: { key: 'report:42' } })
  assert.notEqual(after.id, first.id)
  assert.equal(after.deduplicated, undefined)
})

test('dedupe drop with a window: one job per key per window, finished or not', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const first = await h.submit({ name: 'a', input: 1, dedupe: { key: 'k', window_ms: 1000 } })
  await h.settle()
  h.succeed('r1', only(h.assigns('r1'), 'assignment'), 'x')
  await h.settle()
  assert.equal(h.job(first.id).state, 'completed')
  h.clock.t += 999
  assert.equal((await h.submit({ name: 'a', input: 2, dedupe: { key: 'k', window_ms: 1000 } })).id, first.id, 'within the window: the finished job answers')
  h.clock.t += 1
  const next = await h.submit({ name: 'a', input: 3, dedupe: { key: 'k', window_ms: 1000 } })
  assert.notEqual(next.id, first.id, 'past the window: a new job')
  assert.equal((await h.submit({ name: 'a', input: 4, dedupe: { key: 'k', window_ms: 1000 } })).id, next.id, 'which now holds the key')
})

test('dedupe debounce: a submission while the job waits replaces its input and restarts its delay; once it started, the key takes a new job', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 1)
  const first = await h.submit({ name: 'a', input: 'v1', delay_ms: 50, dedupe: { key: 'save:doc-7', mode: 'debounce' } })
  h.clock.t += 40
  const second = await h.submit({ name: 'a', input: 'v2', delay_ms: 50, dedupe: { key: 'save:doc-7', mode: 'debounce' } })
  assert.deepEqual({ id: second.id, debounced: second.debounced, state: second.state }, { id: first.id, debounced: true, state: 'queued' })
  assert.ok(second.lsn > first.lsn)
  const row = h.task(first.id, 0)
  assert.deepEqual({ input: row.input, run_after: row.run_after, state: row.state }, { input: '"v2"', run_after: h.clock.t + 50, state: 'queued' })
  assert.equal(h.job(first.id).lsn, second.lsn, 'the task waits for the newest submission\'s LSN')
  h.clock.t += 20
  await h.settle()
  assert.equal(h.assigns('r1').length, 0, 'the first delay no longer counts')
  h.clock.t += 30
  await h.until(() => h.assigns('r1').length === 1, 'the debounced task runs once its new delay passed')
  const a = only(h.assigns('r1'), 'assignment')
  assert.deepEqual({ input: a.input, lsn: a.lsn }, { input: '"v2"', lsn: second.lsn })
  // Running: a newer submission cannot change it, and becomes a job of its own.
  const third = await h.submit({ name: 'a', input: 'v3', delay_ms: 50, dedupe: { key: 'save:doc-7', mode: 'debounce' } })
  assert.notEqual(third.id, first.id)
  assert.equal(third.debounced, undefined)
  h.succeed('r1', a, 'saved')
  await h.settle()
  assert.deepEqual(h.reads.list({ limit: 10 }).map((j) => j.id).sort(), [first.id, third.id].sort(), 'two jobs in all: v1 never ran')
  assert.equal(h.job(first.id).state, 'completed')
})

test('dedupe rows go with their jobs when retention deletes them', async (t) => {
  const h = harness(t, { retainMs: 1000 })
  h.register('r1', ['a'], 1)
  const first = await h.submit({ name: 'a', input: 1, dedupe: { key: 'k', window_ms: 1000 } })
  await h.settle()
  h.succeed('r1', only(h.assigns('r1'), 'assignment'), 'x')
  await h.settle()
  const count = () => (h.readConnection.prepare('SELECT count(*) AS n FROM _tandem_job_dedupe').get() as { n: number }).n
  assert.equal(count(), 1)
  h.clock.t += 5000
  await h.write((writes) => writes.expire(h.clock.t - 1000, 10_000, 100))
  assert.equal(h.reads.job(first.id), undefined)
  assert.equal(count(), 0)
})

// ── Dependencies ─────────────────────────────────────────────────────────

test('after: a chain runs in order, each job waiting until the one before completed, with its results as ctx.after', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 4)
  const first = await h.submit({ name: 'a', inputs: [1, 2] })
  const second = await h.submit({ name: 'a', input: 'b', after: [first.id] })
  const third = await h.submit({ name: 'a', input: 'c', after: [second.id] })
  assert.deepEqual([second.state, third.state, h.job(second.id).state, h.job(third.id).state], ['waiting', 'waiting', 'waiting', 'waiting'])
  await h.settle()
  assert.deepEqual(h.assigns('r1').map((a) => a.job), [first.id, first.id], 'only the first job runs')
  for (const a of h.assignsByIndex('r1')) h.succeed('r1', a, { doubled: a.index * 2 })
  await h.until(() => h.assigns('r1').length === 3, 'the second job runs once the first completed')
  const b = h.assigns('r1')[2]!
  assert.equal(b.job, second.id)
  assert.deepEqual(JSON.parse(b.after!), { [first.id]: [{ doubled: 0 }, { doubled: 2 }] })
  assert.ok(b.lsn > first.lsn, 'it runs at the LSN that released it, where the results are')
  assert.equal(h.job(third.id).state, 'waiting')
  h.succeed('r1', b, 'from b')
  await h.until(() => h.assigns('r1').length === 4, 'the third job runs')
  assert.deepEqual(JSON.parse(h.assigns('r1')[3]!.after!), { [second.id]: ['from b'] })
  h.succeed('r1', h.assigns('r1')[3]!, 'from c')
  await h.settle()
  assert.equal(h.job(third.id).state, 'completed')
})

test('after: a job that fails dead fails its dependents down the chain (on_failure fail), or lets them run (continue); never a job stuck waiting', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 4)
  const root = await h.submit({ name: 'a', input: 1, attempts: 1 })
  const failing = await h.submit({ name: 'a', input: 2, after: [root.id] })
  const downstream = await h.submit({ name: 'a', input: 3, after: [failing.id], on_failure: 'continue' })
  const tolerant = await h.submit({ name: 'a', input: 4, after: [root.id], on_failure: 'continue' })
  await h.settle()
  h.fail('r1', only(h.assigns('r1'), 'assignment of the root'), 'boom')
  await h.until(() => h.job(failing.id).state === 'failed', 'the dependent fails')
  const row = h.task(failing.id, 0)
  assert.deepEqual({ state: row.state, attempts: row.attempts, error: row.error }, { state: 'dead', attempts: 0, error: `job ${root.id}, which it runs after, ended failed` })
  await h.until(() => h.assigns('r1').length === 3, 'the tolerant jobs run')
  const ran = h.assigns('r1').slice(1)
  assert.deepEqual(ran.map((a) => a.job).sort(), [downstream.id, tolerant.id].sort(), 'continue: they run though what they waited for failed')
  assert.deepEqual(JSON.parse(ran.find((a) => a.job === tolerant.id)!.after!), { [root.id]: [null] })
})

test('after: cancelling a job fails what waits for it; a missing job is refused and nothing is stored; a finished one is waited for no more', async (t) => {
  const h = harness(t)
  const root = await h.submit({ name: 'a', input: 1 })
  const dependent = await h.submit({ name: 'a', input: 2, after: [root.id] })
  await h.scheduler.cancel(root.id)
  await h.until(() => h.job(dependent.id).state === 'failed', 'the dependent fails')
  const before = h.reads.list({ limit: 100 }).length
  await assert.rejects(h.submit({ name: 'a', input: 3, after: ['j_000000000deadbeef'] }), (error) => isTandemError(error, 'BAD_REQUEST') && /does not exist/.test(error.message))
  assert.equal(h.reads.list({ limit: 100 }).length, before, 'nothing stored')
  // After a job that already completed: queued at once, with its results.
  h.register('r1', ['a'], 2)
  const done = await h.submit({ name: 'a', input: 5 })
  await h.settle()
  h.succeed('r1', only(h.assigns('r1'), 'assignment'), 'five')
  await h.settle()
  const late = await h.submit({ name: 'a', input: 6, after: [done.id] })
  assert.equal(late.state, 'queued')
  await h.until(() => h.assigns('r1').length === 2, 'it runs')
  assert.deepEqual(JSON.parse(h.assigns('r1')[1]!.after!), { [done.id]: ['five'] })
})

test('after: a new master releases a job whose dependency ended while no master tracked it', async (t) => {
  const h = harness(t)
  const root = await h.submit({ name: 'a', input: 1 })
  const dependent = await h.submit({ name: 'a', input: 2, after: [root.id] })
  // The old master recorded the root's end and died before releasing its dependent.
  await h.replaceMaster(() => {
    h.connection.exec(`UPDATE _tandem_tasks SET state = 'done', result = '"r"' WHERE job_id = '${root.id}'`)
    h.connection.exec(`UPDATE _tandem_jobs SET state = 'completed', finished_at = 1 WHERE id = '${root.id}'`)
  })
  h.register('r1', ['a'], 1)
  await h.until(() => h.assigns('r1').length === 1, 'the dependent runs under the new master')
  const a = only(h.assigns('r1'), 'assignment')
  assert.equal(a.job, dependent.id)
  assert.deepEqual(JSON.parse(a.after!), { [root.id]: ['r'] })
})

// ── Limits and fairness ──────────────────────────────────────────────────

test('a group limit of 2 holds across replicas: never 3 of the group running; a freed slot takes the next of the group', async (t) => {
  const h = harness(t)
  await h.scheduler.setLimit(parseLimit({ group: 'tenant-42', concurrency: 2 }))
  h.register('r1', ['a'], 4)
  h.register('r2', ['a'], 4)
  const limited = await h.submit({ name: 'a', inputs: Array.from({ length: 10 }, (_, i) => i), group: 'tenant-42' })
  const other = await h.submit({ name: 'a', inputs: [1, 2, 3], group: 'tenant-7' })
  await h.settle()
  const all = () => [...h.assigns('r1'), ...h.assigns('r2')]
  const running = () => h.tasks(limited.id).filter((r) => r.state === 'leased').length
  assert.equal(running(), 2)
  assert.equal(all().filter((a) => a.job === other.id).length, 3, 'another group is not held back')
  for (let done = 0; done < 8; done++) {
    const next = all().find((a) => a.job === limited.id && h.task(limited.id, a.index).state === 'leased')!
    h.succeed(h.assigns('r1').includes(next) ? 'r1' : 'r2', next, null)
    await h.settle()
    assert.ok(running() <= 2, `at most 2 running, ${running()} after ${done + 1} results`)
  }
  assert.equal(all().filter((a) => a.job === limited.id).length, 10, 'every task ran in the end')
})

test('a handler rate limit lets N tasks start per period; "group:*" bounds each group apart; limits carry over to a new master', async (t) => {
  const h = harness(t)
  await h.scheduler.setLimit(parseLimit({ handler: 'a', rate: { max: 2, period_ms: 60 } }))
  await h.scheduler.setLimit(parseLimit({ group: '*', concurrency: 1 }))
  h.register('r1', ['a', 'b'], 8)
  await h.submit({ name: 'a', inputs: [1, 2, 3, 4, 5] })
  await h.settle()
  assert.equal(h.assigns('r1').length, 2, 'two starts in the first period')
  h.clock.t += 60
  await h.until(() => h.assigns('r1').length === 4, 'two more once the period passed')
  const g1 = await h.submit({ name: 'b', inputs: [1, 2], group: 'g1' })
  const g2 = await h.submit({ name: 'b', inputs: [1, 2], group: 'g2' })
  await h.settle()
  assert.deepEqual([g1.id, g2.id].map((id) => h.tasks(id).filter((r) => r.state === 'leased').length), [1, 1], 'one at a time per group, both groups at once')

  await h.replaceMaster()
  assert.deepEqual(h.scheduler.limitsList().map((l) => l.scope), ['group:*', 'handler:a'])
  await assert.rejects(h.scheduler.removeLimit('group:none'), (error) => isTandemError(error, 'LIMIT_NOT_FOUND'))
})

test('groups share slots fairly: a group that floods the queue does not starve one that comes later; priorities still come first', async (t) => {
  const h = harness(t)
  h.register('r1', ['a'], 2)
  const flood = await h.submit({ name: 'a', inputs: Array.from({ length: 20 }, (_, i) => i), group: 'big' })
  await h.settle()
  const small = await h.submit({ name: 'a', inputs: [1, 2], group: 'small' })
  const urgent = await h.submit({ name: 'a', input: 'now', priority: 5, group: 'big' })
  const order: string[] = []
  for (let i = 0; i < 6; i++) {
    const a = h.assigns('r1').find((x) => h.task(x.job, x.index).state === 'leased')!
    h.succeed('r1', a, null)
    await h.settle()
    order.push(h.assigns('r1').at(-1)!.job)
  }
  assert.equal(order[0], urgent.id, 'the higher priority first')
  assert.equal(order[1], small.id, 'then the group that runs nothing, before the flood')
  // From then on the two groups take turns (the one running fewer first, FIFO between equals):
  // the small group's tasks do not wait behind the 18 the flood still has queued.
  assert.deepEqual(order.slice(1, 4).filter((id) => id === small.id).length, 2, JSON.stringify(order))
  assert.deepEqual(order.slice(4), [flood.id, flood.id])
})

test('limits are checked: a scope, a bound, nothing else', () => {
  assert.deepEqual(parseLimit({ group: 'tenant-42', concurrency: 2, rate: { max: 10, period_ms: 1000 } }), { scope: 'group:tenant-42', concurrency: 2, rate: { max: 10, periodMs: 1000 } })
  assert.deepEqual(parseLimit({ handler: 'resize', concurrency: 4 }), { scope: 'handler:resize', concurrency: 4, rate: undefined })
  const refused = (body: unknown, message: RegExp) => assert.throws(() => parseLimit(body), (error) => isTandemError(error, 'BAD_REQUEST') && message.test(error.message), JSON.stringify(body))
  refused([], /JSON object/)
  refused({ concurrency: 1 }, /exactly one of "handler" and "group"/)
  refused({ handler: 'a', group: 'g', concurrency: 1 }, /exactly one/)
  refused({ handler: 'no such', concurrency: 1 }, /"handler"/)
  refused({ group: '', concurrency: 1 }, /"group"/)
  refused({ group: 'x'.repeat(201), concurrency: 1 }, /"group"/)
  refused({ group: 'g' }, /give "concurrency", "rate", or both/)
  refused({ group: 'g', concurrency: 0 }, /"concurrency"/)
  refused({ group: 'g', rate: { max: 1 } }, /"rate"/)
  refused({ group: 'g', rate: { max: 1, period_ms: 0 } }, /"rate.period_ms"/)
  refused({ group: 'g', rate: 5 }, /"rate"/)
  refused({ group: 'g', concurrency: 1, burst: 2 }, /unknown field "burst"/)
  assert.throws(() => parseJobSpec({ name: 'a', input: 1, group: '*' }), (error) => isTandemError(error, 'BAD_REQUEST') && /"group"/.test(error.message))
})
