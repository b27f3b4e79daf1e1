/**
 * Schedules over a real SQLite database with a clock the test moves: which occurrences are
 * made, and that a master whose memory is stale (an old master, a race) makes none twice.
 * Writes run in a transaction each, as the write pipeline runs them; the schedules look for due
 * occurrences on their own timer, so a test waits for outcomes (rows), never for a duration.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isTandemError } from '../shared/errors.ts'
import { silentLogger } from '../shared/logger.ts'
import { openConnection } from '../storage/index.ts'
import { ensureJobSchema } from './job-schema.ts'
import { JobWrites, type NewJob } from './job-store.ts'
import { nextAfter, occurrencesDue, parseScheduleSpec, catchUpBatchMax } from './schedule-spec.ts'
import { ScheduleReads, ScheduleWrites } from './schedule-store.ts'
import { Schedules } from './schedules.ts'

function world(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-schedules-'))
  const connection = openConnection(join(dir, 'db'))
  connection.exec('PRAGMA journal_mode = WAL')
  ensureJobSchema(connection)
  const reader = openConnection(join(dir, 'db'), { readOnly: true })
  const jobs = new JobWrites(connection)
  const schedules = new ScheduleWrites(connection)
  const clock = { t: Date.UTC(2026, 11, 8, 12), now() { return this.t } }
  let lsn = 0
  let room = true
  const adopted: NewJob[] = []
  const open: Schedules[] = []
  const master = () => {
    const s = new Schedules({
      // One transaction per write, committed on a later turn, as the pipeline does.
      write: async (fn) => {
        await Promise.resolve()
        connection.exec('BEGIN IMMEDIATE')
        try {
          const value = fn(jobs, schedules, lsn + 1)
          connection.exec('COMMIT')
          return { value, lsn: ++lsn }
        } catch (error) {
          connection.exec('ROLLBACK')
          throw error
        }
      },
      reads: new ScheduleReads(reader),
      clock,
      logger: silentLogger,
      hasRoom: () => room,
      adopt: (made) => adopted.push(...made),
    })
    s.start()
    open.push(s)
    return s
  }
  const keys = (id: string) =>
    (reader.prepare('SELECT idempotency_key AS k FROM _tandem_jobs WHERE idempotency_key LIKE ? ORDER BY k').all(`_tandem_schedule:${id}@%`) as { k: string }[]).map((r) => Number(r.k.split('@')[1]))
  const until = async (predicate: () => boolean, what: string) => {
    const deadline = Date.now() + 5000
    while (!predicate()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
      await sleep(10)
    }
  }
  t.after(() => {
    for (const s of open) s.close()
    reader.close()
    connection.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { clock, master, keys, until, adopted, setRoom: (value: boolean) => (room = value) }
}

test('each occurrence makes one job, keyed by its time; a missed stretch makes one (latest) or each (all)', async (t) => {
  const w = world(t)
  const s = w.master()
  const start = w.clock.t
  await s.upsert(parseScheduleSpec({ id: 'latest', name: 'h', input: { n: 1 }, every_ms: 1000 }))
  await s.upsert(parseScheduleSpec({ id: 'all', name: 'h', every_ms: 1000, catch_up: 'all' }))
  w.clock.t += 1000
  await w.until(() => w.keys('latest').length === 1 && w.keys('all').length === 1, 'the first occurrences')
  assert.deepEqual(w.keys('latest'), [start + 1000])
  w.clock.t += 3500
  await w.until(() => w.keys('all').length === 4, 'every missed occurrence of "all"')
  await w.until(() => w.keys('latest').length === 2, 'one job for the missed occurrences of "latest"')
  assert.deepEqual(w.keys('all'), [1, 2, 3, 4].map((k) => start + k * 1000))
  assert.deepEqual(w.keys('latest'), [start + 1000, start + 4000])
  const made = w.adopted.filter((j) => j.idempotencyKey?.includes(':latest@'))
  assert.deepEqual(made.map((j) => [j.name, j.inputs]), [['h', ['{"n":1}']], ['h', ['{"n":1}']]], 'the scheduler got each job to queue')
  assert.equal(s.get('latest')?.last_at, new Date(start + 4000).toISOString())
  assert.equal(s.get('latest')?.next_at, new Date(start + 5000).toISOString())
})

test('a master whose memory is stale makes no occurrence another master made: next_at moves only from what the table holds', async (t) => {
  const w = world(t)
  const old = w.master()
  await old.upsert(parseScheduleSpec({ id: 'race', name: 'h', every_ms: 1000, catch_up: 'all' }))
  old.close() // stops looking: its memory still says next_at is the first occurrence
  const next = w.master() // a new master, read from the table
  w.clock.t += 2000
  await w.until(() => w.keys('race').length === 2, 'the new master made two occurrences')
  next.close()
  // The old master wakes with its stale memory and fires.
  const revived = w.master()
  ;(revived as unknown as { rows: Map<string, unknown> }).rows.set('race', (old as unknown as { rows: Map<string, unknown> }).rows.get('race'))
  w.clock.t += 1000
  await w.until(() => w.keys('race').length === 3, 'the third occurrence')
  await sleep(300)
  assert.equal(new Set(w.keys('race')).size, w.keys('race').length)
  assert.deepEqual(w.keys('race').map((k, i, all) => (i === 0 ? 1000 : k - all[i - 1]!)), [1000, 1000, 1000], 'each occurrence once, none missed')
})

test('a full queue holds occurrences back without losing them; a deleted schedule makes none; a bad one is refused', async (t) => {
  const w = world(t)
  const s = w.master()
  await s.upsert(parseScheduleSpec({ id: 'full', name: 'h', every_ms: 1000, catch_up: 'all' }))
  w.setRoom(false)
  w.clock.t += 2000
  await sleep(300)
  assert.deepEqual(w.keys('full'), [], 'no room: nothing made')
  assert.ok(Number(s.stats()['occurrences_waiting_for_room']) > 0)
  w.setRoom(true)
  await w.until(() => w.keys('full').length === 2, 'the held occurrences')
  await s.remove('full')
  w.clock.t += 5000
  await sleep(300)
  assert.equal(w.keys('full').length, 2)
  await assert.rejects(s.remove('full'), (error) => isTandemError(error, 'SCHEDULE_NOT_FOUND'))
})

test('occurrences: every_ms from the anchor, cron in its time zone across a DST change, and catch-up bounded per round', () => {
  const every = { cron: null, everyMs: 1000, tz: null, anchorAt: 500 }
  assert.deepEqual([nextAfter(every, 0), nextAfter(every, 1499), nextAfter(every, 1500)], [1500, 1500, 2500])
  // 03:00 in Paris: 01:00 UTC on the day summer time starts (29 March 2026), 02:00 UTC the day before.
  const paris = { cron: '0 3 * * *', everyMs: null, tz: 'Europe/Paris', anchorAt: 0 }
  const first = nextAfter(paris, Date.parse('2026-03-28T00:00:00Z'))
  assert.equal(new Date(first).toISOString(), '2026-03-28T02:00:00.000Z')
  assert.equal(new Date(nextAfter(paris, first)).toISOString(), '2026-03-29T01:00:00.000Z')
  const daysLater = Date.parse('2026-04-02T12:00:00Z')
  assert.deepEqual(occurrencesDue(paris, 'latest', first, daysLater).map((at) => new Date(at).toISOString()), ['2026-04-02T01:00:00.000Z'])
  assert.equal(occurrencesDue(paris, 'all', first, daysLater).length, 6)
  assert.equal(occurrencesDue(every, 'all', 1500, 1500 + 10 * catchUpBatchMax * 1000).length, catchUpBatchMax)
  assert.deepEqual(occurrencesDue(every, 'all', 1500, 1499), [])
  // 02:30 in Paris does not exist on 29 March (it runs at 03:30, 01:30 UTC) and happens twice on 25 October (it runs once).
  const halfPastTwo = { cron: '30 2 * * *', everyMs: null, tz: 'Europe/Paris', anchorAt: 0 }
  const spring = nextAfter(halfPastTwo, Date.parse('2026-03-28T12:00:00Z'))
  assert.deepEqual([spring, nextAfter(halfPastTwo, spring)].map((at) => new Date(at).toISOString()), ['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'])
  const autumn = nextAfter(halfPastTwo, Date.parse('2026-10-24T12:00:00Z'))
  assert.deepEqual([autumn, nextAfter(halfPastTwo, autumn)].map((at) => new Date(at).toISOString()), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'])
  const seconds = { cron: '*/2 * * * * *', everyMs: null, tz: null, anchorAt: 0 }
  assert.deepEqual(occurrencesDue(seconds, 'all', 2000, 7000), [2000, 4000, 6000])
})
