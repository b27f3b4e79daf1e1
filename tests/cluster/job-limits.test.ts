/**
 * The job queue is bounded: every unfinished task is held in the master's memory, so past
 * --max-queued-tasks a submission is refused whole, before anything is written.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster } from '../harness/cluster.ts'
import { get, post } from '../harness/http.ts'
import { connect, isTandemClientError } from '../../src/client/index.ts'

interface Answer {
  id?: string
  code?: string
  error?: string
  warning?: string
}

describe('job queue limits', () => {
  let cluster: Cluster
  // No replica runs jobs: every task stays waiting, held by the master.
  before(async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--max-queued-tasks', '10'] })
  })
  after(async () => {
    await cluster.stop()
  })

  const submit = (count: number) => post<Answer>(`${cluster.master.url}/jobs`, { name: 'work', inputs: Array.from({ length: count }, (_, i) => i) })
  const jobCount = async () => (await get<{ jobs: unknown[] }>(`${cluster.master.url}/jobs`)).body.jobs.length

  test('a job larger than the whole queue is a 400 and nothing is enqueued', async () => {
    const answer = await submit(11)
    assert.equal(answer.status, 400, JSON.stringify(answer.body))
    assert.equal(answer.body.code, 'BAD_REQUEST')
    assert.match(String(answer.body.error), /--max-queued-tasks/)
    assert.equal(await jobCount(), 0)
  })

  test('a job past what the queue has left is a 503 OVERLOADED, and fits again once tasks leave', async () => {
    const first = await submit(6)
    assert.equal(first.status, 201, JSON.stringify(first.body))
    const refused = await submit(6)
    assert.equal(refused.status, 503, JSON.stringify(refused.body))
    assert.equal(refused.body.code, 'OVERLOADED')
    assert.equal(await jobCount(), 1)
    const small = await submit(4)
    assert.equal(small.status, 201, JSON.stringify(small.body))
    const cancelled = await post(`${cluster.master.url}/jobs/${first.body.id}/cancel`, '')
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body))
    const after = await submit(6)
    assert.equal(after.status, 201, JSON.stringify(after.body))
    const status = (await get<{ jobs: { waiting_tasks: number } }>(`${cluster.master.url}/status`)).body
    assert.equal(status.jobs.waiting_tasks, 10)
    // A retry brings tasks back: it is held to the same bound.
    const refusedRetry = await post<Answer>(`${cluster.master.url}/jobs/${first.body.id}/retry`, '')
    assert.equal(refusedRetry.status, 503, JSON.stringify(refusedRetry.body))
    assert.equal(refusedRetry.body.code, 'OVERLOADED')
    assert.equal((await post(`${cluster.master.url}/jobs/${after.body.id}/cancel`, '')).status, 200)
    const retried = await post<Answer>(`${cluster.master.url}/jobs/${first.body.id}/retry`, '')
    assert.equal(retried.status, 200, JSON.stringify(retried.body))
    assert.equal((await get<{ jobs: { waiting_tasks: number } }>(`${cluster.master.url}/status`)).body.jobs.waiting_tasks, 10)
  })
})

describe('a job for a handler no connected replica has', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 0 })
  })
  after(async () => {
    await cluster.stop()
  })

  test('is accepted with a warning, which its view repeats and the client\'s map() says aloud', async () => {
    const answer = await post<Answer>(`${cluster.master.url}/jobs`, { name: 'nobody', input: 1 })
    assert.equal(answer.status, 201, JSON.stringify(answer.body))
    assert.match(String(answer.body.warning), /^no connected replica runs a handler named 'nobody'/)
    const view = await get<Answer & { state: string }>(`${cluster.master.url}/jobs/${answer.body.id}`)
    assert.equal(view.body.warning, answer.body.warning)
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    const db = await connect([cluster.master.url], { timeoutMs: 15_000 })
    try {
      await assert.rejects(db.jobs.map('nobody', [1, 2], { waitTimeoutMs: 300 }), (error) => isTandemClientError(error) || error instanceof Error)
      await new Promise((resolve) => setImmediate(resolve))
      assert.ok(warnings.some((w) => (w as Error & { code?: string }).code === 'TANDEM_NO_HANDLER' && /handler named 'nobody'/.test(w.message)), warnings.map(String).join('\n'))
    } finally {
      process.off('warning', onWarning)
      await db.close()
    }
  })
})
