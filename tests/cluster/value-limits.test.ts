/**
 * Bounded entries: no committed entry can be larger than replication carries, and a replica
 * handed a frame it cannot take resyncs from a snapshot instead of retrying it for ever.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { checksum, execute, get, rows } from '../harness/http.ts'

const MiB = 1024 * 1024

describe('value and entry limits', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    const created = await execute(cluster.master.url, ['CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB)'])
    assert.equal(created.status, 200)
  })
  after(async () => {
    await cluster.stop()
  })

  test('a value over 64 MiB is refused per statement and nothing is applied', async () => {
    const before = await checksum(cluster.master.url)
    const result = await execute(cluster.master.url, ['INSERT INTO big(b) VALUES (zeroblob(270000000))'])
    assert.equal(result.status, 200, JSON.stringify(result.body))
    assert.match(String(result.body.results[0]?.error), /too big/)
    const after = await checksum(cluster.master.url)
    assert.equal(after.lsn, before.lsn)
    assert.deepEqual(await rows(cluster.master.url, 'SELECT count(*) FROM big'), [[0]])
  })

  test('a request whose row changes pass one entry is refused whole with ENTRY_TOO_LARGE', async () => {
    const before = await checksum(cluster.master.url)
    const insert = 'INSERT INTO big(b) VALUES (zeroblob(55000000))'
    const result = await execute(cluster.master.url, [insert, insert, insert, insert])
    assert.equal(result.status, 413, JSON.stringify(result.body))
    assert.equal((result.body as unknown as { code: string }).code, 'ENTRY_TOO_LARGE')
    assert.equal((await checksum(cluster.master.url)).lsn, before.lsn)
    assert.deepEqual(await rows(cluster.master.url, 'SELECT count(*) FROM big'), [[0]])
  })

  test('a value just under the limit, inserted and then replaced, replicates', async () => {
    const inserted = await execute(cluster.master.url, [`INSERT INTO big(id, b) VALUES (1, zeroblob(${63 * MiB}))`])
    assert.equal(inserted.status, 200, JSON.stringify(inserted.body))
    assert.equal(inserted.body.results[0]?.error, undefined)
    // An UPDATE's changeset carries the old and the new value: twice the limit in one entry.
    const updated = await execute(cluster.master.url, [`UPDATE big SET b = randomblob(${63 * MiB}) WHERE id = 1`])
    assert.equal(updated.status, 200, JSON.stringify(updated.body))
    assert.equal(updated.body.results[0]?.error, undefined)
    await cluster.converged(40_000)
    assert.deepEqual(await rows(cluster.replicas[0]!.url, 'SELECT length(b) FROM big'), [[63 * MiB]])
  })

  test('a replica handed a frame larger than it takes resyncs from a snapshot and says why', async () => {
    // A small database: the snapshot this test causes is then quick to take.
    assert.equal((await execute(cluster.master.url, ['DELETE FROM big'])).status, 200)
    const small = await cluster.addReplica([], { env: { TANDEM_TEST_FRAME_BYTES_MAX: String(MiB) } })
    await cluster.converged(40_000)
    const written = await execute(cluster.master.url, [`INSERT INTO big(id, b) VALUES (2, randomblob(${2 * MiB}))`])
    assert.equal(written.status, 200, JSON.stringify(written.body))
    const sum = await cluster.converged(40_000)
    assert.equal((await checksum(small.url)).checksum, sum)
    const status = (await get<{ replication: { state: string; last_problem: string | null; snapshots_installed: number } }>(`${small.url}/status`)).body
    assert.match(String(status.replication.last_problem), /larger than this replica takes/)
    assert.ok(status.replication.snapshots_installed >= 1)
    await waitFor(async () => ((await get(`${small.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => 'the replica did not become ready again')
  })
})
