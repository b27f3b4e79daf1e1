/**
 * Tables without a PRIMARY KEY (issue 18): Tandem's own SQLite captures their changes by rowid,
 * so they replicate like any other, through the log and through a promotion. On the published
 * binding (TANDEM_SQLITE=binding, the fallback without a C compiler) they are refused, saying why.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call, execute, rows } from '../harness/http.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

describe('tables without a PRIMARY KEY', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 2 })
  })
  after(async () => {
    await cluster.stop()
  })

  test('are written, answered as rqlite answers, and reach every replica with their rowids', async () => {
    const status = (await call('GET', `${cluster.master.url}/status`)).json as { sqlite: { engine: string; rowid_tables: boolean; version: string } }
    assert.deepEqual({ engine: status.sqlite.engine, rowid_tables: status.sqlite.rowid_tables }, { engine: 'tandem', rowid_tables: true })
    assert.match(status.sqlite.version, /^3\.\d+\.\d+$/)
    const created = await execute(cluster.master.url, ['CREATE TABLE visits (page TEXT, ms REAL, at INTEGER)'])
    assert.equal(created.status, 200, JSON.stringify(created.body))
    assert.equal(created.body.results[0]?.error, undefined)
    const inserted = await execute(cluster.master.url, [['INSERT INTO visits VALUES (?, ?, ?)', '/', 1.5, 1], ['INSERT INTO visits VALUES (?, ?, ?)', '/', 1.5, 1]])
    assert.deepEqual(inserted.body.results.map((r) => [r.last_insert_id, r.rows_affected]), [[1, 1], [2, 1]])
    await execute(cluster.master.url, ['INSERT INTO visits SELECT page || page, ms * 2, at + 1 FROM visits', 'DELETE FROM visits WHERE rowid = 1', "UPDATE visits SET page = '/home' WHERE rowid = 2"])
    await cluster.converged()
    const all = 'SELECT rowid, page, ms, at FROM visits ORDER BY rowid'
    assert.deepEqual(await rows(cluster.master.url, all), [[2, '/home', 1.5, 1], [3, '//', 3, 2], [4, '//', 3, 2]])
    for (const replica of cluster.replicas) assert.deepEqual(await rows(replica.url, all), await rows(cluster.master.url, all))
  })

  test('keep replicating by rowid after a replica is promoted', async () => {
    const old = cluster.master
    const next = cluster.replicas[0]!
    await cluster.converged()
    await old.kill('SIGKILL')
    const promoted = spawnSync(process.execPath, [bin, 'promote', next.url], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(promoted.status, 0, promoted.stderr)
    const written = await execute(next.url, ["UPDATE visits SET ms = ms + 0.25 WHERE rowid = 3", "INSERT INTO visits VALUES ('/new', 0.5, 9)", 'DELETE FROM visits WHERE rowid = 4'])
    assert.equal(written.status, 200, JSON.stringify(written.body))
    const other = cluster.replicas[1]!
    const all = 'SELECT rowid, page, ms, at FROM visits ORDER BY rowid'
    await waitFor(async () => {
      const there = await rows(other.url, all).catch(() => undefined)
      return JSON.stringify(there) === JSON.stringify(await rows(next.url, all)) ? true : undefined
    }, 15_000, () => `the other replica to follow the new master\n${cluster.logs()}`)
    assert.deepEqual(await rows(other.url, all), [[2, '/home', 1.5, 1], [3, '//', 3.25, 2], [5, '/new', 0.5, 9]])
  })
})

describe('tables without a PRIMARY KEY on the published binding (TANDEM_SQLITE=binding)', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 1, env: { TANDEM_SQLITE: 'binding' } })
  })
  after(async () => {
    await cluster.stop()
  })

  test('are refused with SCHEMA_REFUSED, saying how to build the engine that replicates them; keyed tables work', async () => {
    const status = (await call('GET', `${cluster.master.url}/status`)).json as { sqlite: { engine: string; rowid_tables: boolean } }
    assert.deepEqual({ engine: status.sqlite.engine, rowid_tables: status.sqlite.rowid_tables }, { engine: 'binding', rowid_tables: false })
    const refused = await execute(cluster.master.url, ['CREATE TABLE loose (a, b)'])
    assert.equal(refused.status, 400, JSON.stringify(refused.body))
    assert.equal(refused.body.code, 'SCHEMA_REFUSED')
    assert.match(String(refused.body.error), /loose has no PRIMARY KEY.*npm run build/)
    const keyed = await execute(cluster.master.url, ['CREATE TABLE keyed (id INTEGER PRIMARY KEY, a)', "INSERT INTO keyed(a) VALUES ('x')"])
    assert.equal(keyed.status, 200, JSON.stringify(keyed.body))
    await cluster.converged()
    assert.deepEqual(await rows(cluster.replicas[0]!.url, 'SELECT * FROM keyed'), [[1, 'x']])
    assert.deepEqual(await rows(cluster.master.url, "SELECT count(*) FROM sqlite_schema WHERE name = 'loose'"), [[0]])
  })
})
