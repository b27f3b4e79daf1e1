/**
 * Session guarantees, checked on recorded histories: a client session writes on the master and
 * reads from two replicas, one of them delayed (it applies each entry no earlier than 300 ms
 * after receiving it). Every operation is recorded with its invoke and complete times, the
 * value written or read and its LSN, and the history checker counts violations of
 * read-your-writes and monotonic reads.
 *
 * With session consistency there must be none. With consistency 'none' the same workload must
 * show both kinds, which proves the checker (and the delayed replica) can see them: a read of
 * the delayed replica right after a write cannot see it for 300 ms, and a read of the master in
 * between makes the next stale read go back in time.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Consistency, type TandemClient } from '../../src/client/index.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { checkHistory, type Operation } from './history-checker.ts'

const applyDelayMs = 300
const iterations = 10

describe('session guarantees with a delayed replica', () => {
  let cluster: Cluster
  let db: TandemClient
  let fast: string
  let delayed: string

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    await cluster.addReplica(['--apply-delay-ms', String(applyDelayMs)])
    fast = cluster.replicas[0]!.url
    delayed = cluster.replicas[1]!.url
    db = await connect([cluster.master.url], { timeoutMs: 10_000 })
    // A replica is ready before its stream to the master is up; the master lists it from then on.
    await waitFor(async () => ((await db.refresh()).replicas.length === 2 ? true : undefined), 10_000, () => `both replicas attached: ${JSON.stringify(db.topology())}`)
    await db.execute('CREATE TABLE register (id INTEGER PRIMARY KEY, v TEXT NOT NULL)')
  })

  after(async () => {
    await db?.close()
    await cluster.stop()
  })

  /** One session's workload on register `key`; every operation recorded. */
  async function run(consistency: Consistency, key: number): Promise<Operation[]> {
    const session = db.withSession()
    const history: Operation[] = []
    const name = `${consistency}-session`
    const read = async (reads: 'replicas' | 'master', node?: string) => {
      const invokedAt = performance.now()
      const rows = await session.query<{ v: string }>('SELECT v FROM register WHERE id = ?', [key], { consistency, reads, ...(node === undefined ? {} : { node }) })
      history.push({ type: 'read', session: name, key: String(key), value: rows[0]?.v ?? null, invokedAt, completedAt: performance.now(), lsn: rows.lsn, node: rows.node })
    }
    for (let i = 1; i <= iterations; i++) {
      const value = `${consistency}-${i}`
      const invokedAt = performance.now()
      const written = await session.execute('INSERT INTO register(id, v) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET v = excluded.v', [key, value])
      history.push({ type: 'write', session: name, key: String(key), value, invokedAt, completedAt: performance.now(), lsn: written.lsn })
      await read('replicas', delayed) // right after the write, on the replica that cannot have it yet
      await read('master') // certainly has it
      await read('replicas', delayed) // stale again unless it waits
      await read('replicas', fast)
      await read('replicas') // wherever the client chooses
    }
    return history
  }

  test("with consistency 'session' no read misses the session's writes or goes back in time", async () => {
    const history = await run('session', 1)
    const result = checkHistory(history)
    assert.deepEqual(result.violations.map((v) => v.message), [])
    assert.equal(result.writes, iterations)
    assert.equal(result.reads, iterations * 5)
    const servedByDelayed = history.filter((op) => op.type === 'read' && op.node === delayed).length
    assert.ok(servedByDelayed >= iterations * 2, 'the delayed replica served its share of the reads')
  })

  test("with consistency 'none' the checker catches stale reads of the delayed replica", async () => {
    const result = checkHistory(await run('none', 2))
    assert.ok(result.counts['read-your-writes'] > 0, JSON.stringify(result.counts))
    assert.ok(result.counts['monotonic-reads'] > 0, JSON.stringify(result.counts))
    assert.equal(result.counts['unknown-value'], 0)
    assert.equal(result.counts['read-beyond-position'], 0, 'no node ever shows more than it says it applied')
  })
})
