/**
 * Damage found and healed instead of retried for ever (issue 17, part 5), against real
 * processes: an entry of the master's log that fails its checksum sends a lagging replica to a
 * snapshot (it used to reconnect ~24 times a second, for good); a replica whose database file has
 * a damaged page resyncs from a snapshot when applying hits it (it used to retry the same entry
 * for good, reporting `streaming`).
 */
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'

const clusters: Cluster[] = []
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stop()
})

async function startWithRows(rows: number): Promise<Cluster> {
  const cluster = await Cluster.start({ replicas: 1 })
  clusters.push(cluster)
  await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
  for (let i = 0; i < rows; i++) await call('POST', `${cluster.master.url}/db/execute`, [['INSERT INTO t(v) VALUES (?)', `row ${i}`]])
  await cluster.converged()
  return cluster
}

const replicaStatus = async (url: string) => (await call('GET', `${url}/status`)).json.replication as { snapshots_installed: number; last_problem: string | null }

test("an entry of the master's log that fails its checksum sends the lagging replica to a snapshot, once", async () => {
  const cluster = await startWithRows(3)
  const replica = cluster.replicas[0]!
  const replicaLsn = (await call('GET', `${replica.url}/status`)).json.position.lsn as number
  await replica.kill('SIGTERM')
  for (let i = 0; i < 10; i++) await call('POST', `${cluster.master.url}/db/execute`, [['INSERT INTO t(v) VALUES (?)', `later ${i}`]])
  await cluster.master.kill('SIGTERM')
  // One byte of an entry the replica has not received yet, flipped on the master's disk.
  const db = new DatabaseSync(join(cluster.master.spec.dataDir, 'tandem.db'))
  const row = db.prepare('SELECT ops FROM _tandem_log WHERE lsn = ?').get(replicaLsn + 2) as { ops: Uint8Array }
  const ops = Buffer.from(row.ops)
  ops[ops.length - 1] = ops[ops.length - 1]! ^ 0xff
  db.prepare('UPDATE _tandem_log SET ops = ? WHERE lsn = ?').run(ops, replicaLsn + 2)
  db.close()
  await cluster.master.restart()
  // The master finds it when it starts, before any replica asks for the entry.
  const atStart = (await call('GET', `${cluster.master.url}/status`)).json.master as { last_problem: string | null }
  assert.match(atStart.last_problem ?? '', new RegExp(`log entry ${replicaLsn + 2} fails its checksum`))
  await replica.restart()
  await cluster.converged()
  assert.equal((await replicaStatus(replica.url)).snapshots_installed, 1)
  const master = (await call('GET', `${cluster.master.url}/status`)).json.master as { last_problem: string | null }
  assert.match(master.last_problem ?? '', new RegExp(`log entry ${replicaLsn + 2} fails its checksum`))
})

test('a replica whose database file has a damaged page resyncs from a snapshot when applying reaches it', async () => {
  const cluster = await startWithRows(200)
  const replica = cluster.replicas[0]!
  await replica.kill('SIGTERM')
  const path = join(replica.spec.dataDir, 'tandem.db')
  const db = new DatabaseSync(path)
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  const { rootpage } = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 't'").get() as { rootpage: number }
  const { page_size: pageSize } = db.prepare('PRAGMA page_size').get() as { page_size: number }
  db.close()
  // The table's root page: its b-tree header overwritten, as a bad sector or a stray write would.
  const fd = openSync(path, 'r+')
  writeSync(fd, Buffer.alloc(16, 0xff), 0, 16, (rootpage - 1) * pageSize)
  closeSync(fd)
  await replica.restart()
  await call('POST', `${cluster.master.url}/db/execute`, [["INSERT INTO t(v) VALUES ('after the damage')"]])
  await cluster.converged()
  const status = await replicaStatus(replica.url)
  assert.equal(status.snapshots_installed, 1)
  const count = await call('GET', `${replica.url}/db/query?level=none&q=${encodeURIComponent('SELECT count(*) FROM t')}`)
  assert.deepEqual(count.json.results[0].values, [[201]])
})
