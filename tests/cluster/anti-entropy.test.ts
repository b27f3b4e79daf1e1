/**
 * Anti-entropy (issue 17, part 5), against real processes: a value changed in a replica's
 * database file, in a row the master never writes again, is found by the range checks the
 * master writes into its log (range-checks.ts), and the replica resyncs from a snapshot. Before,
 * it was served as it was for good.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'

let cluster: Cluster | undefined
after(async () => {
  await cluster?.stop()
})

test("a value changed in a replica's file is found by the range checks and the replica resyncs", async () => {
  // A check of up to 1,000 rows every 50 ms: a round over the table below takes two checks.
  cluster = await Cluster.start({ replicas: 1, masterArgs: ['--check-interval', '50ms'] })
  const { master } = cluster
  const replica = cluster.replicas[0]!
  await call('POST', `${master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
  const rows = Array.from({ length: 1000 }, (_, i) => `('value ${String(i).padStart(4, '0')}')`).join(', ')
  await call('POST', `${master.url}/db/execute`, [`INSERT INTO t(v) VALUES ${rows}`])
  await cluster.converged()

  await replica.kill('SIGTERM')
  const path = join(replica.spec.dataDir, 'tandem.db')
  const db = new DatabaseSync(path)
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  db.close()
  // One character of one row's value, changed in place in the file: the page stays well formed.
  const file = readFileSync(path)
  const at = file.indexOf('value 0777')
  assert.ok(at > 0, 'the row is in the main file')
  file[at + 9] = '8'.charCodeAt(0)
  writeFileSync(path, file)
  await replica.restart()
  const before = await call('GET', `${replica.url}/db/query?level=none&q=${encodeURIComponent("SELECT count(*) FROM t WHERE v = 'value 0778'")}`)
  assert.deepEqual(before.json.results[0].values, [[2]], 'the replica serves the changed value: nothing else reads that row again')

  await waitFor(async () => ((await call('GET', `${replica.url}/status`)).json.replication?.snapshots_installed >= 1 ? true : undefined), 30_000, () => 'the replica to resync')
  await cluster.converged()
  const healed = await call('GET', `${replica.url}/db/query?level=none&q=${encodeURIComponent("SELECT count(*) FROM t WHERE v = 'value 0778'")}`)
  assert.deepEqual(healed.json.results[0].values, [[1]])
  assert.ok(replica.log.some((line) => line.includes('anti-entropy: table') && line.includes('REPLICA_DIVERGED')), 'the replica says why it resynced')
})
