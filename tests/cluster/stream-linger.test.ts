import { afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { execute, post, rows, type ExecuteBody } from '../harness/http.ts'

/**
 * Under a steady stream of commits the master holds entries for up to --stream-linger-ms and
 * sends them as one frame (ReplicationServer.publish). Nothing may wait on that hold but lag:
 * the timer sends a burst's last entries with no later commit, and a synchronous write or a
 * stopping master sends held entries at once. A linger of a minute makes any entry left held
 * visible as a timeout.
 */
describe('the master holds entries under a steady stream (--stream-linger-ms)', () => {
  const clusters: Cluster[] = []
  const start = async (lingerMs: number) => {
    const cluster = await Cluster.start({ replicas: 1, masterArgs: ['--stream-linger-ms', String(lingerMs)] })
    clusters.push(cluster)
    const created = await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
    assert.equal(created.status, 200, JSON.stringify(created.body))
    return cluster
  }
  const insertMany = async (url: string, count: number) => {
    const results = await Promise.all(Array.from({ length: count }, (_, i) => execute(url, [['INSERT INTO t(v) VALUES (?)', `v${i}`]])))
    for (const result of results) assert.equal(result.status, 200, JSON.stringify(result.body))
    return Math.max(...results.map((r) => r.body.lsn ?? 0))
  }
  afterEach(async () => {
    for (const cluster of clusters.splice(0)) await cluster.stop()
  })

  test('a steady stream shares frames, and its last entries reach the replica with no later commit', async () => {
    const cluster = await start(200)
    const streamed = async () => ((await cluster.status(cluster.master.url))['master'] as { stream: { linger_ms: number; frames: number; entries: number } }).stream
    await cluster.converged()
    const before = await streamed()
    for (let i = 0; i < 20; i++) {
      const result = await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', `v${i}`]])
      assert.equal(result.status, 200, JSON.stringify(result.body))
    }
    await cluster.converged()
    assert.deepEqual(await rows(cluster.replicas[0]!.url, 'SELECT count(*) FROM t'), [[20]])
    const after = await streamed()
    assert.equal(after.linger_ms, 200)
    assert.equal(after.entries - before.entries, 20, 'twenty inserts, one entry each, streamed to a caught-up replica')
    assert.ok(after.frames - before.frames < 20, `commits less than 200 ms apart share frames: ${JSON.stringify({ before, after })}`)
  })

  test('a synchronous write sends the held entries at once and is confirmed', async () => {
    const cluster = await start(60_000)
    await insertMany(cluster.master.url, 5)
    const result = await post<ExecuteBody & { sync?: { required: number; confirmed: number } }>(`${cluster.master.url}/db/execute?sync=1&sync_timeout=10s`, [
      ["INSERT INTO t(v) VALUES ('sync')"],
    ])
    assert.equal(result.status, 200, JSON.stringify(result.body))
    assert.deepEqual(result.body.sync, { required: 1, confirmed: 1 })
    // Confirmed means applied: every entry before it came along.
    assert.deepEqual(await rows(cluster.replicas[0]!.url, 'SELECT count(*) FROM t'), [[6]])
  })

  test('a master that stops sends its held entries first', async () => {
    const cluster = await start(60_000)
    const lsn = await insertMany(cluster.master.url, 10)
    await cluster.master.kill('SIGTERM')
    const replica = cluster.replicas[0]!
    await waitFor(async () => ((await rows(replica.url, 'SELECT count(*) FROM t'))[0]![0] === 10 ? true : undefined), 10_000, () => `the replica did not receive the held entries up to LSN ${lsn}`)
  })
})
