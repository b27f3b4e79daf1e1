/**
 * Damage found and healed instead of retried for ever (issue 17, part 5), against real
 * processes: an entry of the master's log that fails its checksum sends a lagging replica to a
 * snapshot (it used to reconnect ~24 times a second, for good); a replica whose database file has
 * a damaged page resyncs from a snapshot when applying hits it (it used to retry the same entry
 * for good, reporting `streaming`).
 */
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'
import { damageRootPage } from '../harness/damage.ts'

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
  // The table's root page: its b-tree header overwritten, as a bad sector or a stray write would.
  damageRootPage(replica.spec.dataDir, 't')
  await replica.restart()
  await call('POST', `${cluster.master.url}/db/execute`, [["INSERT INTO t(v) VALUES ('after the damage')"]])
  await cluster.converged()
  const status = await replicaStatus(replica.url)
  assert.equal(status.snapshots_installed, 1)
  const count = await call('GET', `${replica.url}/db/query?level=none&q=${encodeURIComponent('SELECT count(*) FROM t')}`)
  assert.deepEqual(count.json.results[0].values, [[201]])
})

test('a master whose database file is damaged refuses every write from the first one that finds it, says so, and resyncs once a replica is promoted', async () => {
  const cluster = await startWithRows(200)
  await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)'])
  await cluster.converged()
  const old = cluster.master
  await old.kill('SIGKILL')
  damageRootPage(old.spec.dataDir, 't')
  await old.restart()
  const hit = await call('POST', `${old.url}/db/execute`, [["INSERT INTO t(v) VALUES ('into the damage')"]])
  assert.equal(hit.status, 503, hit.text)
  assert.equal(hit.json.code, 'WRITE_FAILED')
  // Another table's pages are fine, but a damaged file is not written to again.
  const elsewhere = await call('POST', `${old.url}/db/execute`, [["INSERT INTO u(v) VALUES ('elsewhere')"]])
  assert.equal(elsewhere.status, 503, elsewhere.text)
  assert.match(elsewhere.text, /damaged/)
  assert.equal((await call('GET', `${old.url}/readyz`)).status, 503)
  assert.match((await call('GET', `${old.url}/status`)).json.master.last_problem ?? '', /damaged/)
  // The operator promotes the replica; the damaged master follows it and copies its database.
  const replica = cluster.replicas[0]!
  const promoted = await call('POST', `${replica.url}/cluster/promote`)
  assert.equal(promoted.status, 200, promoted.text)
  await waitFor(async () => ((await call('GET', `${old.url}/status`)).json.replication?.snapshots_installed === 1 ? true : undefined), 20_000, () => cluster.logs())
  const sums = await Promise.all([old, replica].map(async (n) => (await call('GET', `${n.url}/db/checksum`)).json))
  assert.equal(sums[0].checksum, sums[1].checksum)
  const count = await call('GET', `${old.url}/db/query?level=none&q=${encodeURIComponent('SELECT count(*) FROM t')}`)
  assert.deepEqual(count.json.results[0].values, [[200]], 'the damaged write was not applied anywhere')
})
