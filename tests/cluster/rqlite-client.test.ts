/**
 * An existing rqlite client, unchanged, against a Tandem master and replica: rqlite-js 2.x
 * (npm `rqlite-js`), the client the rqlite project lists for JavaScript. It sends writes to
 * POST /db/execute, string queries as GET /db/query?q=, arrays as POST /db/query, flags as
 * `key=<String(value)>`, and reads results through `DataResults` (see rqlite-api-notes §9).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { BackupApiClient, DataApiClient, StatusApiClient, type DataResult, type DataResults } from 'rqlite-js'
import { Cluster } from '../harness/cluster.ts'
import { checksum } from '../harness/http.ts'

/** The rows of a query result as objects; fails on any result error. */
function objects(results: DataResults): Record<string, unknown>[] {
  assert.equal(results.hasError(), false, results.getFirstError()?.message)
  return results.toArray()
}

/** The status and Tandem body of a request rqlite-js rejected (it rejects every non-2xx it does not retry). */
async function rejection(promise: Promise<unknown>): Promise<{ status: number; body: { code?: string; error?: string } }> {
  try {
    await promise
  } catch (error) {
    const response = (error as { response?: { status: number; data: { code?: string; error?: string } } }).response
    assert.ok(response !== undefined, `expected an HTTP error, got ${String(error)}`)
    return { status: response.status, body: response.data }
  }
  assert.fail('the request was expected to be rejected')
}

describe('rqlite-js works unchanged against Tandem', () => {
  let cluster: Cluster
  let onMaster: DataApiClient
  let onReplica: DataApiClient

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    onMaster = new DataApiClient(cluster.master.url)
    onReplica = new DataApiClient(cluster.replicas[0]!.url)
  })

  after(async () => {
    await cluster?.stop()
  })

  test('on the master: CREATE and parameterised INSERTs in a transaction, then reads at level none and at the default level', async () => {
    const written = await onMaster.execute(
      [
        'CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, age INTEGER, photo BLOB)',
        ['INSERT INTO foo(name, age) VALUES(?, ?)', 'fiona', 20],
        ['INSERT INTO foo(name, age, photo) VALUES(:name, :age, :photo)', { name: 'declan', age: 30, photo: "x'0102'" }],
      ],
      { transaction: true },
    )
    assert.equal(written.hasError(), false, written.getFirstError()?.message)
    const first = written.get(1) as DataResult
    assert.equal(first.getLastInsertId(), 1)
    assert.equal(first.getRowsAffected(), 1)
    assert.equal((written.get(2) as DataResult).getLastInsertId(), 2)

    const expected = [
      { id: 1, name: 'fiona', age: 20, photo: null },
      { id: 2, name: 'declan', age: 30, photo: 'AQI=' },
    ]
    assert.deepEqual(objects(await onMaster.query('SELECT * FROM foo ORDER BY id', { level: 'none' })), expected)
    assert.deepEqual(objects(await onMaster.query('SELECT * FROM foo ORDER BY id')), expected)
    assert.deepEqual(objects(await onMaster.query('SELECT * FROM foo ORDER BY id', { level: 'strong' })), expected)
    // An array is sent as POST /db/query: parameterised reads.
    const named = await onMaster.query([['SELECT name FROM foo WHERE age > :age ORDER BY id', { age: 25 }]], { level: 'weak' })
    assert.deepEqual(objects(named), [{ name: 'declan' }])
    // An empty result has no `values`, which rqlite-js turns into one empty object, as against rqlite.
    assert.deepEqual(objects(await onMaster.query('SELECT * FROM foo WHERE id < 0')), [{}])
  })

  test('an SQL error is a result error, not an exception; in a transaction nothing of the request is applied', async () => {
    const before = await checksum(cluster.master.url)
    const duplicate = await onMaster.execute(
      [
        ['INSERT INTO foo(name) VALUES(?)', 'rolled back'],
        ['INSERT INTO foo(id, name) VALUES(?, ?)', 1, 'duplicate'],
      ],
      { transaction: true },
    )
    assert.equal(duplicate.hasError(), true)
    assert.equal(duplicate.getFirstError()?.message, 'UNIQUE constraint failed: foo.id')
    // rqlite turns flags on by their presence, and rqlite-js sends `transaction=false`: still a transaction.
    const falseFlag = await onMaster.execute([["INSERT INTO foo(name) VALUES('also rolled back')"], 'INSERT INTO nowhere VALUES (1)'], { transaction: false })
    assert.equal(falseFlag.getFirstError()?.message, 'no such table: nowhere')
    assert.equal((await checksum(cluster.master.url)).checksum, before.checksum, 'nothing was applied')

    const query = await onMaster.query('SELECT * FROM nowhere')
    assert.equal(query.getFirstError()?.message, 'no such table: nowhere')
  })

  test('a malformed or refused request is rejected with its HTTP status and Tandem code, once', async () => {
    const empty = await rejection(onMaster.execute([]))
    assert.equal(empty.status, 400)
    assert.equal(empty.body.code, 'BAD_REQUEST')
    const attach = await rejection(onMaster.execute(["ATTACH DATABASE '/tmp/other.db' AS other"]))
    assert.equal(attach.status, 400)
    assert.equal(attach.body.code, 'SQL_REFUSED')
    assert.match(attach.body.error ?? '', /ATTACH/)
  })

  test('on a replica: writes are forwarded to the master; default-level reads see them at once, level none once replicated', async () => {
    const written = await onReplica.execute([['INSERT INTO foo(name, age) VALUES(?, ?)', 'via replica', 40]])
    assert.equal(written.hasError(), false, written.getFirstError()?.message)
    const id = (written.get(0) as DataResult).getLastInsertId()
    assert.equal(typeof id, 'number')

    const masterRows = await new DataApiClient(cluster.master.url).query(`SELECT name FROM foo WHERE id = ${id}`, { level: 'none' })
    assert.deepEqual(objects(masterRows), [{ name: 'via replica' }], 'the write landed on the master')
    // The default level (weak) and strong are answered by the master through the replica.
    assert.deepEqual(objects(await onReplica.query(`SELECT name FROM foo WHERE id = ${id}`)), [{ name: 'via replica' }])
    assert.deepEqual(objects(await onReplica.query([[`SELECT name FROM foo WHERE id = ?`, id]], { level: 'strong' })), [{ name: 'via replica' }])

    await cluster.converged()
    assert.deepEqual(objects(await onReplica.query(`SELECT name, age FROM foo WHERE id = ${id}`, { level: 'none' })), [{ name: 'via replica', age: 40 }])
    const all = await onReplica.query('SELECT count(*) AS n FROM foo', { level: 'none' })
    assert.deepEqual(objects(all), [{ n: 3 }])

    // A transaction sent through the replica is applied whole, or not at all.
    const tx = await onReplica.execute(
      [
        ['INSERT INTO foo(name) VALUES(?)', 'tx via replica'],
        ['INSERT INTO foo(id, name) VALUES(?, ?)', 1, 'duplicate'],
      ],
      { transaction: true },
    )
    assert.equal(tx.getFirstError()?.message, 'UNIQUE constraint failed: foo.id')
    assert.deepEqual(objects(await onReplica.query("SELECT count(*) AS n FROM foo WHERE name = 'tx via replica'")), [{ n: 0 }])
  })

  test('a client given every node (the master first, as rqlite-js expects) reads from replicas at level none and writes to the master', async () => {
    const client = new DataApiClient([cluster.master.url, cluster.replicas[0]!.url], { activeHostRoundRobin: true })
    const written = await client.execute([['INSERT INTO foo(name) VALUES(?)', 'round robin']], { timings: true })
    assert.equal(written.hasError(), false)
    assert.equal(typeof written.getTime(), 'number')
    await cluster.converged()
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(objects(await client.query("SELECT count(*) AS n FROM foo WHERE name = 'round robin'", { level: 'none' })), [{ n: 1 }])
    }
  })

  test("the status and backup clients read Tandem's /status and /db/backup", async () => {
    for (const url of [cluster.master.url, cluster.replicas[0]!.url]) {
      const status = await new StatusApiClient(url).status()
      assert.equal(status.status, 200)
      assert.equal(status.body['role'], url === cluster.master.url ? 'master' : 'replica')
    }
    const stream = await new BackupApiClient(cluster.replicas[0]!.url).backup()
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
    assert.equal(Buffer.concat(chunks).subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
  })
})
