import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { execute, get, query, rows } from '../harness/http.ts'
import { schemaChangeBetweenReads } from '../harness/schema-change.ts'

interface ReadStats {
  threads: number
  workers: { running: boolean; served: number; in_flight: number; restarts: number }[]
  inline: number
  first_runs_over_budget: number
}

describe('reads on read threads', () => {
  let cluster: Cluster
  before(async () => {
    // Every read goes to the read threads here; the last test looks at cheap reads kept inline.
    // One HTTP process per node: these tests count what its main thread and read threads did.
    const args = ['--read-threads', '2', '--inline-read-max-us', '0', '--http-workers', '1']
    cluster = await Cluster.start({ replicas: 1, masterArgs: args, replicaArgs: args })
    const ok = await execute(cluster.master.url, [
      'CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT, big INTEGER, b BLOB)',
      ["INSERT INTO kv (id, v, big, b) VALUES (1, 'one', 9223372036854775807, x'00ff10')"],
      ["INSERT INTO kv (id, v, big, b) VALUES (2, 'two', -9223372036854775808, randomblob(16))"],
    ])
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    await cluster.converged()
  })
  after(async () => {
    await cluster.stop()
  })

  const reads = async (url: string) => (await cluster.status(url))['reads'] as ReadStats

  test('concurrent reads on a replica are served by every read thread', async () => {
    const replica = cluster.replicas[0]!
    const before = (await reads(replica.url)).workers.map((w) => w.served)
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => rows(replica.url, `SELECT v FROM kv WHERE id = ${(i % 2) + 1}`)))
    answers.forEach((answer, i) => assert.deepEqual(answer, [[i % 2 === 0 ? 'one' : 'two']]))
    const stats = await reads(replica.url)
    assert.equal(stats.threads, 2)
    const served = stats.workers.map((w, i) => w.served - before[i]!)
    assert.ok(served.every((n) => n > 0), `every read thread served some of the reads: ${served.join(', ')}`)
  })

  test('64-bit integers and BLOBs read through a read thread are exact', async () => {
    // JSON.parse would round the integers: compare the text.
    const response = await fetch(`${cluster.replicas[0]!.url}/db/query?level=none&q=${encodeURIComponent('SELECT big, hex(b), b FROM kv WHERE id = 1')}`)
    const text = await response.text()
    assert.match(text, /\[9223372036854775807,"00FF10","AP8Q"\]/)
    const bytes = await query(cluster.replicas[0]!.url, 'SELECT b FROM kv WHERE id = 1', 'level=none&blob_array')
    assert.deepEqual(bytes.body.results[0]?.values, [[[0, 255, 16]]])
    assert.match(await (await fetch(`${cluster.master.url}/db/query?q=${encodeURIComponent('SELECT big FROM kv WHERE id = 2')}`)).text(), /\[-9223372036854775808\]/)
  })

  test('SELECT * read again after ADD COLUMN, RENAME COLUMN and a table made anew names the new columns and types (a node with read threads)', async () => {
    await schemaChangeBetweenReads(cluster)
  })

  test('SQL that writes or escapes the database is refused on a read thread as before', async () => {
    const url = cluster.replicas[0]!.url
    const insert = await query(url, "INSERT INTO kv (id, v) VALUES (9, 'x')")
    assert.equal(insert.status, 200)
    assert.equal(insert.body.results[0]?.error, 'attempt to change database via query operation')
    const attach = await query(url, "ATTACH DATABASE '/tmp/other.db' AS other")
    assert.equal(attach.status, 400)
    assert.equal(attach.body.code, 'SQL_REFUSED')
  })

  test('reads during a snapshot install answer NOT_READY or the data; after it every thread reads the new file', async () => {
    const replica = cluster.replicas[0]!
    // Warm both threads' connections on the current file.
    await Promise.all(Array.from({ length: 20 }, () => rows(replica.url, 'SELECT v FROM kv WHERE id = 1')))
    const statusBefore = (await cluster.status(replica.url))['replication'] as { snapshots_installed: number }
    // Change the replica's file behind its back: the next entry conflicts and it resyncs from a snapshot.
    const file = new DatabaseSync(join(replica.spec.dataDir, 'tandem.db'), { timeout: 5000 })
    file.exec(`UPDATE kv SET v = 'tampered' WHERE id = 1`)
    file.close()
    let reading = true
    const seen = new Set<string>()
    const background = (async () => {
      while (reading) {
        const answers = await Promise.all(Array.from({ length: 4 }, () => query(replica.url, 'SELECT v FROM kv WHERE id = 2')))
        for (const answer of answers) {
          if (answer.status === 200) {
            assert.deepEqual(answer.body.results[0]?.values, [['two']])
            seen.add('200')
          } else {
            assert.ok(answer.status === 503 && ['NOT_READY', 'REPLICA_DIVERGED'].includes(answer.body.code ?? ''), JSON.stringify(answer.body))
            seen.add(answer.body.code ?? '')
          }
        }
      }
    })()
    await execute(cluster.master.url, ["UPDATE kv SET v = 'one again' WHERE id = 1"])
    await waitFor(async () => {
      const status = (await cluster.status(replica.url))['replication'] as { snapshots_installed: number; state: string }
      return status.snapshots_installed > statusBefore.snapshots_installed && status.state === 'streaming' ? true : undefined
    }, 20_000, () => `the replica to resync from a snapshot\n${cluster.logs()}`)
    reading = false
    await background
    assert.ok(seen.has('200'))
    await cluster.converged()
    // A thread still on the old file would answer 'tampered'.
    const answers = await Promise.all(Array.from({ length: 40 }, () => rows(replica.url, 'SELECT v FROM kv WHERE id = 1')))
    for (const answer of answers) assert.deepEqual(answer, [['one again']])
    const stats = await reads(replica.url)
    assert.ok(stats.workers.every((w) => w.running && w.restarts === 0), JSON.stringify(stats))
  })

  test('a read never seen is tried on the main thread first: a cheap one stays there, a slow one is stopped and goes to the read threads', async () => {
    // A 10 ms limit: far above a point read, even a cold one, and far below the slow read's time.
    const replica = await cluster.addReplica(['--read-threads', '2', '--inline-read-max-us', '10000', '--http-workers', '1'])
    await cluster.converged()
    const served = (stats: ReadStats) => stats.workers.reduce((sum, w) => sum + w.served, 0)
    const before = await reads(replica.url)
    assert.equal(before.inline, 0)
    for (let i = 0; i < 20; i++) assert.deepEqual(await rows(replica.url, 'SELECT id FROM kv WHERE id = 1'), [[1]])
    const cheap = await reads(replica.url)
    assert.equal(served(cheap) - served(before), 0, 'never sent to a read thread')
    assert.equal(cheap.inline - before.inline, 20, 'tried here the first time, then known cheap')
    assert.equal(cheap.first_runs_over_budget, 0)
    // ~200 ms of SQLite work: its first run is stopped after the trial's 1 ms, and every run is answered by a thread.
    const slow = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c'
    for (let i = 0; i < 3; i++) assert.deepEqual(await rows(replica.url, slow), [[2000000]])
    const after = await reads(replica.url)
    assert.equal(served(after) - served(cheap), 3)
    assert.equal(after.inline - cheap.inline, 1, 'one trial')
    assert.equal(after.first_runs_over_budget, 1, 'stopped past its budget, once')
  })

  test('--read-threads 0 reads on the main thread', async () => {
    const replica = await cluster.addReplica(['--read-threads', '0', '--http-workers', '1'])
    await cluster.converged()
    assert.deepEqual(await rows(replica.url, 'SELECT v FROM kv WHERE id = 2'), [['two']])
    assert.deepEqual((await get(`${replica.url}/status`)).body['reads'], { threads: 0, min_lsn_waits: 0 })
  })
})
