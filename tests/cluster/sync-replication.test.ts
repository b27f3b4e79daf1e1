import { after, afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { execute, post, query, rows, type ExecuteBody } from '../harness/http.ts'

interface SyncBody extends ExecuteBody {
  sync?: { required: number; confirmed: number }
}

describe('synchronous replication', () => {
  const clusters: Cluster[] = []
  const start = async (options: Parameters<typeof Cluster.start>[0]) => {
    const cluster = await Cluster.start(options)
    clusters.push(cluster)
    // With --min-replicas the master takes writes only once its replicas are connected.
    await waitFor(async () => ((await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])).status === 200 ? true : undefined), 10_000)
    return cluster
  }
  afterEach(async () => {
    for (const cluster of clusters.splice(0)) {
      for (const node of [cluster.master, ...cluster.replicas]) node.resume()
      await cluster.stop()
    }
  })

  test('sync=1 with its only replica paused times out with SYNC_TIMEOUT, and the write is on the master', async () => {
    const cluster = await start({ replicas: 1 })
    await cluster.converged()
    cluster.replicas[0]!.pause()
    const result = await post<SyncBody>(`${cluster.master.url}/db/execute?sync=1&sync_timeout=300ms`, [["INSERT INTO t(v) VALUES ('unconfirmed')"]])
    assert.equal(result.status, 202, JSON.stringify(result.body))
    assert.equal(result.body.code, 'SYNC_TIMEOUT')
    assert.equal(result.headers.get('x-tandem-error'), 'SYNC_TIMEOUT')
    assert.deepEqual(result.body.sync, { required: 1, confirmed: 0 })
    assert.match(result.body.error ?? '', /committed on the master/)
    assert.deepEqual(await rows(cluster.master.url, `SELECT v FROM t`), [['unconfirmed']])
    cluster.replicas[0]!.resume()
    await cluster.converged()
  })

  test('sync=1 acknowledged means the entry is on the replica disk, even if the master dies right after', async () => {
    const cluster = await start({ replicas: 1 })
    const acknowledged: number[] = []
    for (let i = 0; i < 20; i++) {
      const result = await post<SyncBody>(`${cluster.master.url}/db/execute?sync=1&sync_timeout=10s`, [['INSERT INTO t(v) VALUES (?)', `sync ${i}`]])
      assert.equal(result.status, 200, JSON.stringify(result.body))
      assert.deepEqual(result.body.sync, { required: 1, confirmed: 1 })
      acknowledged.push(i)
    }
    await cluster.master.kill('SIGKILL')
    const replica = cluster.replicas[0]!
    await replica.kill('SIGKILL')
    // Read the replica's file directly: what it acknowledged, it committed.
    const file = new DatabaseSync(join(replica.spec.dataDir, 'tandem.db'), { readOnly: true })
    const values = (file.prepare(`SELECT v FROM t WHERE v LIKE 'sync %' ORDER BY id`).all() as { v: string }[]).map((r) => r.v)
    file.close()
    assert.deepEqual(values, acknowledged.map((i) => `sync ${i}`))
  })

  test('a replica holds its sync while no write waits for it, and syncs at once when a sync=1 write does', async () => {
    // Ten minutes: within this test only the master's request can make the replica sync.
    const cluster = await start({ replicas: 1, replicaArgs: ['--synchronous', 'full', '--flush-delay-ms', '600000'] })
    const replica = cluster.replicas[0]!
    const replicationOf = async () => (await cluster.status(replica.url))['replication'] as { applied_lsn: number; durable_lsn: number; wal_syncs: number }
    let lsn = 0
    for (let i = 0; i < 5; i++) lsn = (await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', `async ${i}`]])).body.lsn!
    const held = await waitFor(async () => {
      const replication = await replicationOf()
      return replication.applied_lsn >= lsn ? replication : undefined
    }, 10_000)
    assert.ok(held.durable_lsn < lsn, `applied ${held.applied_lsn}, durable ${held.durable_lsn}: the sync was not held`)

    const synced = await post<SyncBody>(`${cluster.master.url}/db/execute?sync=1&sync_timeout=10s`, [["INSERT INTO t(v) VALUES ('waited for')"]])
    assert.equal(synced.status, 200, JSON.stringify(synced.body))
    assert.deepEqual(synced.body.sync, { required: 1, confirmed: 1 })
    const after = await replicationOf()
    assert.ok(after.durable_lsn >= synced.body.lsn, `durable ${after.durable_lsn} < ${synced.body.lsn}`)
    assert.ok(after.wal_syncs > held.wal_syncs)
  })

  test('--sync-replicas makes every write synchronous; sync=0 opts out per request', async () => {
    const cluster = await start({ replicas: 2, masterArgs: ['--sync-replicas', '2', '--sync-timeout-ms', '300'] })
    const confirmed = await post<SyncBody>(`${cluster.master.url}/db/execute`, [["INSERT INTO t(v) VALUES ('both')"]])
    assert.equal(confirmed.status, 200)
    assert.deepEqual(confirmed.body.sync, { required: 2, confirmed: 2 })
    cluster.replicas[1]!.pause()
    const partial = await post<SyncBody>(`${cluster.master.url}/db/execute`, [["INSERT INTO t(v) VALUES ('one of two')"]])
    assert.equal(partial.status, 202)
    assert.deepEqual(partial.body.sync, { required: 2, confirmed: 1 })
    const optedOut = await post<SyncBody>(`${cluster.master.url}/db/execute?sync=0`, [["INSERT INTO t(v) VALUES ('async')"]])
    assert.equal(optedOut.status, 200)
    assert.equal(optedOut.body.sync, undefined)
    const status = await cluster.status(cluster.master.url)
    assert.deepEqual((status['master'] as { last_sync_write: unknown }).last_sync_write, { lsn: partial.body.lsn, required: 2, confirmed: 1 })
  })

  test('--min-replicas refuses writes while too few replicas are close, and nothing is applied', async () => {
    const cluster = await start({ replicas: 1, masterArgs: ['--min-replicas', '1', '--max-lag', '400'] })
    assert.equal((await execute(cluster.master.url, [["INSERT INTO t(v) VALUES ('accepted')"]])).status, 200)
    cluster.replicas[0]!.pause()
    let attempt = 0
    const refused = await waitFor(async () => {
      const result = await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', `attempt ${++attempt}`]])
      return result.status === 503 ? result : undefined
    }, 10_000, () => 'the master to refuse writes')
    assert.equal(refused.body.code, 'NOT_ENOUGH_REPLICAS')
    assert.deepEqual(await rows(cluster.master.url, `SELECT count(*) FROM t WHERE v = 'attempt ${attempt}'`), [[0]], 'a refused write applied nothing')
    cluster.replicas[0]!.resume()
    await waitFor(async () => ((await execute(cluster.master.url, [["INSERT INTO t(v) VALUES ('accepted again')"]])).status === 200 ? true : undefined), 10_000)
    await cluster.converged()
  })
})

describe('idempotency keys', () => {
  let cluster: Cluster
  after(async () => {
    await cluster?.stop()
  })

  test('a retried write with the same key runs once and answers the same LSN; a different request with it is refused', async () => {
    cluster = await Cluster.start({ replicas: 1 })
    await execute(cluster.master.url, ['CREATE TABLE pay (id INTEGER PRIMARY KEY, amount INTEGER)'])
    const send = (url: string, key: string, amount: number) =>
      fetch(`${url}/db/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify([['INSERT INTO pay(amount) VALUES (?)', amount]]),
      }).then(async (r) => ({ status: r.status, replay: r.headers.get('x-tandem-idempotent-replay'), body: (await r.json()) as ExecuteBody }))
    const first = await send(cluster.master.url, 'order-17', 100)
    assert.equal(first.status, 200)
    assert.equal(first.replay, null)
    const again = await send(cluster.master.url, 'order-17', 100)
    assert.equal(again.status, 200)
    assert.equal(again.replay, '1')
    assert.equal(again.body.lsn, first.body.lsn)
    assert.deepEqual(again.body.results, first.body.results)
    const viaReplica = await send(cluster.replicas[0]!.url, 'order-17', 100)
    assert.equal(viaReplica.body.lsn, first.body.lsn)
    const reused = await send(cluster.master.url, 'order-17', 999)
    assert.equal(reused.status, 422)
    assert.equal((reused.body as unknown as { code: string }).code, 'IDEMPOTENCY_KEY_REUSED')
    // Concurrent duplicates land in one batch or several: still once.
    await Promise.all(Array.from({ length: 10 }, () => send(cluster.master.url, 'order-18', 5)))
    assert.deepEqual(await rows(cluster.master.url, 'SELECT amount, count(*) FROM pay GROUP BY amount ORDER BY amount'), [[5, 1], [100, 1]])
    await cluster.converged()
    const bad = await fetch(`${cluster.master.url}/db/execute`, { method: 'POST', headers: { 'idempotency-key': 'has space' }, body: '["SELECT 1"]' })
    assert.equal(bad.status, 400)
  })
})

describe('read levels on a replica', () => {
  let cluster: Cluster
  after(async () => {
    cluster?.master.resume()
    await cluster?.stop()
  })

  test('freshness fails closed on a replica cut off from its master, and recovers', async () => {
    cluster = await Cluster.start({ replicas: 1 })
    await execute(cluster.master.url, ['CREATE TABLE f (id INTEGER PRIMARY KEY)', 'INSERT INTO f VALUES (1)'])
    await cluster.converged()
    const replica = cluster.replicas[0]!.url
    assert.equal((await query(replica, 'SELECT count(*) FROM f', 'freshness=2s')).status, 200)
    cluster.master.pause()
    const stale = await waitFor(async () => {
      const result = await query(replica, 'SELECT count(*) FROM f', 'freshness=300ms')
      return result.status === 503 ? result : undefined
    }, 10_000, () => 'the replica to refuse a stale read')
    assert.equal(stale.body.code, 'REPLICA_TOO_STALE')
    // Without a bound the replica still answers from its copy.
    assert.deepEqual(await rows(replica, 'SELECT count(*) FROM f'), [[1]])
    cluster.master.resume()
    await waitFor(async () => ((await query(replica, 'SELECT count(*) FROM f', 'freshness=300ms')).status === 200 ? true : undefined), 10_000)
  })

  test('strong and linearizable reads run on the master only once its replicas confirm it, and fail closed otherwise', async () => {
    for (const level of ['strong', 'linearizable']) {
      const confirmed = await query(cluster.master.url, 'SELECT count(*) FROM f', `level=${level}`)
      assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body))
      // Sent to a replica, they are answered by the master.
      assert.equal((await query(cluster.replicas[0]!.url, 'SELECT count(*) FROM f', `level=${level}`)).status, 200)
    }
    cluster.replicas[0]!.pause()
    const unconfirmed = await query(cluster.master.url, 'SELECT count(*) FROM f', 'level=linearizable&linearizable_timeout=300ms')
    assert.equal(unconfirmed.status, 503)
    assert.equal(unconfirmed.body.code, 'NO_MASTER')
    // A weak read does not ask.
    assert.equal((await query(cluster.master.url, 'SELECT count(*) FROM f', 'level=weak')).status, 200)
    cluster.replicas[0]!.resume()
    await waitFor(async () => ((await query(cluster.master.url, 'SELECT 1', 'level=strong')).status === 200 ? true : undefined), 10_000)
  })

  test('a delayed replica applies late but applies everything, and min_lsn waits for it', async () => {
    const delayed = await cluster.addReplica(['--apply-delay-ms', '300'])
    const written = await execute(cluster.master.url, ['INSERT INTO f VALUES (2)'])
    const read = await query(delayed.url, 'SELECT count(*) FROM f', `min_lsn=${written.body.lsn}`)
    assert.equal(read.status, 200)
    assert.deepEqual(read.body.results[0]?.values, [[2]])
    await cluster.converged()
  })
})
