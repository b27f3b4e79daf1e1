/**
 * kill -9 at the awkward moments the fault suite's load does not aim at: while a replica installs
 * a snapshot, and while a replica is being promoted. Every node must restart and recover, with
 * no acknowledged write lost and every copy equal.
 */
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { checksum, execute, get, post, rows } from '../harness/http.ts'
import type { NodeProcess } from '../harness/node-process.ts'

const clusters: Cluster[] = []
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stop()
})

async function sameEverywhere(nodes: NodeProcess[], timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => {
    const sums = await Promise.all(nodes.map((n) => checksum(n.url).catch(() => undefined)))
    return sums.every((s) => s !== undefined && s.lsn === sums[0]!.lsn && s.checksum === sums[0]!.checksum) ? true : undefined
  }, timeoutMs, () => 'every node to hold the same data at the same LSN')
}

test('a replica killed while it downloads or installs a snapshot restarts and converges', async () => {
  const cluster = await Cluster.start({ replicas: 0, masterArgs: ['--log-retain-bytes', '1'] })
  clusters.push(cluster)
  await execute(cluster.master.url, ['CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB)'])
  // About 24 MB, so the snapshot takes a moment to copy and send.
  for (let i = 0; i < 24; i++) await execute(cluster.master.url, [`INSERT INTO big(b) SELECT randomblob(8192) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 128) SELECT x FROM c)`])
  const replica = await cluster.addReplica()
  const download = join(replica.spec.dataDir, 'snapshot.download')
  // Kill it the moment the snapshot starts arriving (or, if it was faster, whenever we look).
  await waitFor(() => (existsSync(download) ? true : undefined), 20_000, () => 'the snapshot download to start').catch(() => undefined)
  await replica.kill('SIGKILL')
  for (let i = 0; i < 5; i++) await execute(cluster.master.url, [`INSERT INTO big(b) VALUES (randomblob(16))`])
  await replica.restart()
  await sameEverywhere([cluster.master, replica])
  assert.deepEqual(await rows(replica.url, 'SELECT count(*) FROM big'), await rows(cluster.master.url, 'SELECT count(*) FROM big'))
})

test('a replica killed during its promotion restarts, and the cluster recovers with nothing acknowledged lost', async () => {
  const cluster = await Cluster.start({ replicas: 2 })
  clusters.push(cluster)
  await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
  const acknowledged: string[] = []
  for (let i = 0; i < 20; i++) {
    const value = `before ${i}`
    const result = await post(`${cluster.master.url}/db/execute?sync=2`, [['INSERT INTO t(v) VALUES (?)', value]])
    if (result.status === 200) acknowledged.push(value)
  }
  assert.equal(acknowledged.length, 20)
  await cluster.master.kill('SIGKILL')
  const [r1, r2] = cluster.replicas as [NodeProcess, NodeProcess]
  // Promote r1 and kill it while the promotion runs (fencing, raising the epoch, opening the writer…).
  const promoting = post(`${r1.url}/cluster/promote`, '').catch(() => undefined)
  await new Promise((resolve) => setTimeout(resolve, 5))
  await r1.kill('SIGKILL')
  await promoting
  await r1.restart()
  // Whatever state the promotion was left in, a promotion now succeeds and the cluster recovers.
  const promoted = await waitFor(async () => {
    for (const node of [r1, r2]) {
      const status = (await get<{ role: string }>(`${node.url}/status`)).body
      if (status.role === 'master') return node
    }
    const again = await post<{ epoch: number }>(`${r1.url}/cluster/promote?force`, '')
    return again.status === 200 ? r1 : undefined
  }, 20_000, () => 'a master after the interrupted promotion')
  const other = promoted === r1 ? r2 : r1
  await post(`${other.url}/cluster/follow`, { master: promoted.url })
  const after = await execute(promoted.url, [["INSERT INTO t(v) VALUES ('after')"]])
  assert.equal(after.status, 200, JSON.stringify(after.body))
  await sameEverywhere([r1, r2])
  const values = (await rows(promoted.url, 'SELECT v FROM t ORDER BY id')).map((r) => r[0])
  for (const value of acknowledged) assert.ok(values.includes(value), `acknowledged ${value} survived`)
})
