/**
 * Histories that differ at the same (epoch, LSN) are found by their history hashes (issue 17,
 * part 1), against real processes: a master that comes back with older state (its newest
 * entries lost, as a lost WAL tail would) and writes new entries at the same LSNs; its replica,
 * which holds the lost entries, finds the fork when it reconnects, keeps its own entries aside
 * and resyncs, instead of streaming on over a history that is not the master's.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'

let cluster: Cluster | undefined

after(async () => {
  await cluster?.stop()
})

const insert = (url: string, id: number, v: string) => call('POST', `${url}/db/execute`, [['INSERT INTO t(id, v) VALUES (?, ?)', id, v]])
const ids = async (url: string, local = '') => (await call('GET', `${url}/db/query?q=${encodeURIComponent('SELECT id FROM t ORDER BY id')}${local}`)).json.results[0].values.map((r: number[]) => r[0])

test('a master that lost its newest entries and wrote others at the same LSNs: its replica finds the fork, keeps its entries aside and resyncs', async () => {
  cluster = await Cluster.start({ replicas: 1 })
  const { master } = cluster
  const replica = cluster.replicas[0]!
  await call('POST', `${master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
  for (let id = 1; id <= 5; id++) await insert(master.url, id, 'shared')
  await cluster.converged()
  const sharedLsn = (await call('GET', `${master.url}/status`)).json.master.lsn as number

  // The master's files as they are now: what it will come back with.
  await master.kill('SIGTERM')
  const backup = `${master.spec.dataDir}.older`
  cpSync(master.spec.dataDir, backup, { recursive: true })
  await master.restart()
  for (let id = 100; id <= 104; id++) assert.equal((await insert(master.url, id, 'lost')).status, 200)
  await cluster.converged()
  const lostLsn = (await call('GET', `${replica.url}/status`)).json.position.lsn as number
  await replica.kill('SIGTERM')

  // The master comes back without the entries the replica holds, and writes others at their LSNs.
  await master.kill('SIGTERM')
  rmSync(master.spec.dataDir, { recursive: true })
  cpSync(backup, master.spec.dataDir, { recursive: true })
  await master.restart()
  for (let id = 200; id <= 207; id++) assert.equal((await insert(master.url, id, 'new')).status, 200)
  const masterLsn = (await call('GET', `${master.url}/status`)).json.master.lsn as number
  assert.ok(masterLsn > lostLsn, `the master (LSN ${masterLsn}) is past where the replica stopped (LSN ${lostLsn})`)

  await replica.restart()
  await cluster.converged()
  assert.deepEqual(await ids(replica.url, '&level=none'), [1, 2, 3, 4, 5, 200, 201, 202, 203, 204, 205, 206, 207])
  // The entries only the replica had are kept aside, not lost without a trace.
  const discarded = readdirSync(join(replica.spec.dataDir, 'discarded'))
  assert.equal(discarded.length, 1, discarded.join(', '))
  const kept = readFileSync(join(replica.spec.dataDir, 'discarded', discarded[0]!), 'utf8').trim().split('\n')
  assert.equal(kept.length, lostLsn - sharedLsn, 'the entries of the lost writes, and nothing the two histories share')
  await waitFor(async () => ((await call('GET', `${replica.url}/status`)).json.replication?.state === 'streaming' ? true : undefined), 20_000, () => 'the replica streaming again')
})
