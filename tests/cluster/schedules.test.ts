/**
 * Schedules on a real cluster: each occurrence makes one job, once, in the replicated history —
 * through a kill -9 of the master and a promotion — and the API refuses what it cannot take.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { get, post, rows } from '../harness/http.ts'

/** The occurrence times (ms) of `id` whose jobs `url` holds, oldest first, one per job. */
async function occurrences(url: string, id: string): Promise<number[]> {
  const prefix = `_tandem_schedule:${id}@`
  const found = (await rows(url, `SELECT idempotency_key FROM _tandem_jobs WHERE idempotency_key LIKE '${prefix}%'`)) as [string][]
  return found.map(([key]) => Number(key.slice(prefix.length))).sort((a, b) => a - b)
}

async function remove(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'DELETE' })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe('schedules', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('every second across a kill -9 of the master and a promotion: each occurrence made once, none missed (catch_up all)', async () => {
    cluster = await Cluster.start({ replicas: 0 })
    const candidate = await cluster.addReplica([])
    // A third node: the promotion needs a majority of the nodes it knows.
    await cluster.addReplica([])
    const created = await post(`${cluster.master.url}/schedules`, { id: 'every-second', name: 'double', input: 21, every_ms: 1000, catch_up: 'all' })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const before = await waitFor(async () => {
      const made = await occurrences(candidate.url, 'every-second')
      return made.length >= 3 ? made : undefined
    }, 20_000, () => `three occurrences replicated\n${cluster.logs(10)}`)
    await cluster.master.kill('SIGKILL')
    // Occurrences fall due while there is no master; the new one must make them.
    await sleep(2500)
    const promoted = await post(`${candidate.url}/cluster/promote`, '')
    assert.equal(promoted.status, 200, JSON.stringify(promoted.body))
    const made = await waitFor(async () => {
      const all = await occurrences(candidate.url, 'every-second')
      return all.length >= before.length + 5 ? all : undefined
    }, 20_000, () => `five more occurrences on the new master\n${cluster.logs(10)}`)
    assert.equal(new Set(made).size, made.length, 'no occurrence twice')
    const steps = made.slice(1).map((at, i) => at - made[i]!)
    assert.deepEqual([...new Set(steps)], [1000], `one job per second from the first occurrence on, none missed: ${JSON.stringify(made)}`)
    const schedule = (await get<{ last_at: string; next_at: string }>(`${candidate.url}/schedules/every-second`)).body
    assert.ok(Date.parse(schedule.last_at) >= made.at(-1)!, `the schedule says what it made last: ${JSON.stringify(schedule)} after ${JSON.stringify(made)}`)
    assert.ok(Date.parse(schedule.next_at) > Date.parse(schedule.last_at))
  })

})

describe('schedules, one master and a replica', () => {
  let cluster: Cluster
  after(() => cluster?.stop())

  test('catch_up latest makes one job for the occurrences missed; a deleted schedule makes no more', async () => {
    cluster = await Cluster.start({ replicas: 1 })
    const { master } = cluster
    const created = await post(`${master.url}/schedules`, { id: 'latest', name: 'double', input: 4, every_ms: 1000 })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const before = await waitFor(async () => {
      const made = await occurrences(master.url, 'latest')
      return made.length >= 2 ? made : undefined
    }, 20_000)
    master.pause()
    await sleep(3500)
    master.resume()
    const made = await waitFor(async () => {
      const all = await occurrences(master.url, 'latest')
      return all.length >= before.length + 2 ? all : undefined
    }, 20_000, () => 'occurrences after the pause')
    const steps = made.slice(1).map((at, i) => at - made[i]!)
    assert.ok(steps.every((step) => step % 1000 === 0), JSON.stringify(made))
    assert.ok(steps.some((step) => step >= 3000), `the occurrences missed while paused collapsed into one job: ${JSON.stringify(made)}`)
    const deleted = await remove(`${master.url}/schedules/latest`)
    assert.deepEqual([deleted.status, deleted.body['deleted']], [200, true])
    const count = (await occurrences(master.url, 'latest')).length
    await sleep(1500)
    assert.ok((await occurrences(master.url, 'latest')).length <= count + 1, 'at most the occurrence already being made')
    assert.equal((await get(`${master.url}/schedules/latest`)).status, 404)
  })

  test('bad schedules are refused naming the field, and nothing is stored; a replica forwards; an id is replaced, not doubled', async () => {
    const { master } = cluster
    const replica = cluster.replicas[0]!
    const hostile: [unknown, RegExp][] = [
      [[], /JSON object/],
      [{ name: 'double', every_ms: 1000 }, /"id"/],
      [{ id: '../etc', name: 'double', every_ms: 1000 }, /"id"/],
      [{ id: 'x'.repeat(129), name: 'double', every_ms: 1000 }, /"id"/],
      [{ id: 'a', name: 'no such', every_ms: 1000 }, /"name"/],
      [{ id: 'a', name: 'double' }, /exactly one of "cron"/],
      [{ id: 'a', name: 'double', cron: '* * * * *', every_ms: 1000 }, /exactly one of "cron"/],
      [{ id: 'a', name: 'double', every_ms: 999 }, /"every_ms"/],
      [{ id: 'a', name: 'double', cron: '61 * * * *' }, /"cron" is not a cron expression/],
      [{ id: 'a', name: 'double', cron: '* * *' }, /5 fields/],
      [{ id: 'a', name: 'double', cron: '0 3 * * *', tz: 'Mars/Olympus' }, /"tz"/],
      [{ id: 'a', name: 'double', every_ms: 1000, tz: 'UTC' }, /"tz"/],
      [{ id: 'a', name: 'double', every_ms: 1000, catch_up: 'some' }, /"catch_up"/],
      [{ id: 'a', name: 'double', every_ms: 1000, attempts: 0 }, /"attempts"/],
      [{ id: 'a', name: 'double', every_ms: 1000, colour: 'red' }, /unknown field "colour"/],
    ]
    const listBefore = (await get<{ schedules: unknown[] }>(`${master.url}/schedules`)).body.schedules.length
    for (const [body, message] of hostile) {
      const answer = await post<{ code: string; error: string }>(`${replica.url}/schedules`, body)
      assert.equal(answer.status, 400, JSON.stringify(body))
      assert.equal(answer.body.code, 'BAD_REQUEST')
      assert.match(answer.body.error, message, JSON.stringify(body))
    }
    const notJson = await post<{ code: string }>(`${master.url}/schedules`, '{', 'application/json')
    assert.deepEqual([notJson.status, notJson.body.code], [400, 'BAD_REQUEST'])
    assert.equal((await get<{ schedules: unknown[] }>(`${master.url}/schedules`)).body.schedules.length, listBefore, 'nothing stored')

    const first = await post(`${replica.url}/schedules`, { id: 'nightly', name: 'double', input: 1, cron: '0 3 * * *', tz: 'Europe/Paris' })
    assert.equal(first.status, 201, JSON.stringify(first.body))
    const replaced = await post<{ cron: string; input: unknown }>(`${master.url}/schedules`, { id: 'nightly', name: 'double', input: 2, cron: '30 4 * * *', tz: 'Europe/Paris' })
    assert.deepEqual([replaced.status, replaced.body.cron, replaced.body.input], [200, '30 4 * * *', 2])
    const listed = (await get<{ schedules: { id: string }[] }>(`${replica.url}/schedules`)).body.schedules.filter((s) => s.id === 'nightly')
    assert.equal(listed.length, 1)
    const missing = await remove(`${master.url}/schedules/never-made`)
    assert.deepEqual([missing.status, missing.body['code']], [404, 'SCHEDULE_NOT_FOUND'])
  })
})
