/**
 * `tandem/client` against real processes: a master and two replicas, each a `tandem` process on
 * port 0.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import {
  IndeterminateWriteError,
  SqlError,
  SyncTimeoutError,
  connect,
  isTandemClientError,
  type TandemClient,
} from '../../src/client/index.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'

interface Item {
  id: number
  name: string
  price: number | null
  data: Uint8Array | null
}

/** A URL nothing listens on: a port that was free a moment ago. */
async function deadUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

describe('tandem/client against a master and two replicas', () => {
  let cluster: Cluster
  let db: TandemClient
  const clients: TandemClient[] = []

  before(async () => {
    cluster = await Cluster.start({ replicas: 2 })
    db = await connect([cluster.master.url, ...cluster.replicas.map((r) => r.url)], { timeoutMs: 10_000 })
    clients.push(db)
    await db.batch([
      'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, data BLOB)',
      'CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)',
      'CREATE TABLE ledger (id INTEGER PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount <> 0))',
    ], { transaction: true })
    await caughtUp()
  })

  /**
   * Waits until the master lists both replicas with nothing left to apply, as the client sees
   * it. A replica is ready before its stream to the master is up, and a replica that showed lag
   * at the client's last look gets fewer reads until the next.
   */
  const caughtUp = () =>
    waitFor(
      async () => {
        const { replicas } = await db.refresh()
        return replicas.length === 2 && replicas.every((r) => r.lagEntries === 0) ? true : undefined
      },
      10_000,
      () => `both replicas attached and caught up: ${JSON.stringify(db.topology())}`,
    )

  after(async () => {
    for (const node of [cluster.master, ...cluster.replicas]) node.resume()
    await Promise.all(clients.map((c) => c.close()))
    await cluster.stop()
  })

  test("the package exports the client as 'tandem/client'", async () => {
    const specifier: string = 'tandem/client' // a variable: type-checking must not need a build
    const exported = (await import(specifier)) as Record<string, unknown>
    for (const name of ['connect', 'TandemClientError', 'IndeterminateWriteError', 'SyncTimeoutError', 'SqlError', 'Session']) {
      assert.equal(typeof exported[name], 'function', name)
    }
  })

  test('connect learns the master and both replicas', () => {
    const topology = db.topology()
    assert.equal(topology.master, cluster.master.url)
    assert.deepEqual(topology.replicas.map((r) => r.url).sort(), cluster.replicas.map((r) => r.url).sort())
  })

  test('a write returns its LSN; a typed read returns rows as objects, with where and at which LSN they were read', async () => {
    const written = await db.execute('INSERT INTO items(name, price, data) VALUES (?, ?, ?)', ['apple', 1.25, new Uint8Array([0, 1, 254, 255])])
    assert.equal(written.rowsAffected, 1)
    assert.equal(typeof written.lastInsertId, 'number')
    assert.equal(written.node, cluster.master.url)
    assert.equal(db.session.lsn, written.lsn)
    const rows = await db.query<Item>('SELECT id, name, price, data FROM items WHERE id = ?', [written.lastInsertId])
    assert.deepEqual(rows, [{ id: written.lastInsertId, name: 'apple', price: 1.25, data: new Uint8Array([0, 1, 254, 255]) }])
    assert.deepEqual(rows.columns, ['id', 'name', 'price', 'data'])
    assert.deepEqual(rows.types, ['integer', 'text', 'real', 'blob'])
    assert.ok(rows.lsn >= written.lsn, `read at ${rows.lsn}, written at ${written.lsn}`)
    assert.ok(cluster.replicas.some((r) => r.url === rows.node), `served by a replica, not ${rows.node}`)
  })

  test('positional and named parameters bind; 64-bit integers and NULLs round-trip exactly', async () => {
    await db.execute('INSERT INTO items(id, name, price) VALUES (:id, :name, :price)', { id: 9007199254740993n, name: 'big', price: null })
    await db.execute('INSERT INTO items(id, name) VALUES (?, ?)', [101, 'positional'])
    const big = await db.query<Item>('SELECT * FROM items WHERE id = :id', { id: 9007199254740993n })
    assert.deepEqual(big, [{ id: 9007199254740993n, name: 'big', price: null, data: null }])
    const positional = await db.query<{ name: string }>('SELECT name FROM items WHERE id = ? AND name = ?', [101, 'positional'])
    assert.deepEqual(positional, [{ name: 'positional' }])
  })

  test('a batch answers one result per statement, RETURNING rows included', async () => {
    const out = await db.batch([
      { sql: 'INSERT INTO counters(id, n) VALUES (?, ?)', params: [1, 0] },
      'UPDATE counters SET n = n + 1 WHERE id = 1',
      { sql: 'UPDATE counters SET n = n + :by WHERE id = :id RETURNING n', params: { by: 10, id: 1 } },
    ])
    assert.equal(out.results.length, 3)
    assert.equal(out.results[0]!.lastInsertId, 1)
    assert.equal(out.results[1]!.rowsAffected, 1)
    assert.deepEqual(out.results[2]!.rows, [{ n: 11 }])
  })

  test('tx sends its statements as one all-or-nothing request', async () => {
    const before = await db.execute('INSERT INTO ledger(account, amount) VALUES (?, ?)', ['opening', 100])
    const out = await db.tx((t) => {
      t.execute('INSERT INTO ledger(account, amount) VALUES (?, ?)', ['alice', -30])
      const credit = t.execute('INSERT INTO ledger(account, amount) VALUES (?, ?)', ['bob', 30])
      return { credit }
    })
    assert.equal(out.lsn, before.lsn + 1, 'one request, one log entry')
    assert.equal(out.results.length, 2)
    assert.equal(out.results[out.value.credit]!.rowsAffected, 1)

    const count = async () => (await db.query<{ n: number }>('SELECT count(*) AS n FROM ledger'))[0]!.n
    const rowsBefore = await count()
    await assert.rejects(
      db.tx((t) => {
        t.execute('INSERT INTO ledger(account, amount) VALUES (?, ?)', ['carol', -5])
        t.execute('INSERT INTO ledger(account, amount) VALUES (?, ?)', ['dave', 0]) // fails its CHECK
        t.execute('INSERT INTO ledger(account, amount) VALUES (?, ?)', ['erin', 5])
      }),
      (error) => {
        assert.ok(error instanceof SqlError, String(error))
        assert.equal(error.code, 'SQL_ERROR')
        assert.equal(error.statementIndex, 1)
        assert.equal(error.rolledBack, true)
        assert.equal(error.lsn, undefined)
        assert.match(error.message, /CHECK constraint failed/)
        return true
      },
    )
    assert.equal(await count(), rowsBefore, 'the statement before the failure was rolled back too')
    await assert.rejects(db.tx(() => { throw new Error('changed my mind') }), /changed my mind/)
    assert.equal(await count(), rowsBefore, 'a callback that throws sends nothing')
  })

  test('errors are typed with codes: request errors, SQL errors per statement, refused SQL and schema', async () => {
    await assert.rejects(db.execute('   '), (error) => isTandemClientError(error, 'BAD_REQUEST') && error.status === 400)
    await assert.rejects(db.query('SELECT * FROM nowhere'), (error) => error instanceof SqlError && /no such table: nowhere/.test(error.message))
    await assert.rejects(db.execute('ATTACH DATABASE ? AS other', ['/tmp/x.db']), (error) => isTandemClientError(error, 'SQL_REFUSED') && error.status === 400)
    await assert.rejects(db.execute('CREATE TABLE nokey (v TEXT, _rowid_)'), (error) => isTandemClientError(error, 'SCHEMA_REFUSED'))
    await assert.rejects(db.execute('INSERT INTO items(name) VALUES (?)', [undefined as never]), (error) => isTandemClientError(error, 'BAD_REQUEST') && error.status === undefined)

    // Without a transaction the other statements stand, and the error says which failed.
    const failing = db.batch(['INSERT INTO counters(id, n) VALUES (50, 1)', 'INSERT INTO counters(id, n) VALUES (50, 2)', 'INSERT INTO counters(id, n) VALUES (51, 1)'])
    await assert.rejects(failing, (error) => {
      assert.ok(error instanceof SqlError)
      assert.equal(error.statementIndex, 1)
      assert.equal(error.rolledBack, false)
      assert.match(error.message, /UNIQUE constraint failed/)
      assert.equal(error.results.length, 3)
      assert.ok(error.lsn !== undefined && db.session.lsn >= error.lsn)
      return true
    })
    assert.deepEqual(await db.query('SELECT id, n FROM counters WHERE id >= 50 ORDER BY id'), [{ id: 50, n: 1 }, { id: 51, n: 1 }])
  })

  test('every read of a session sees its own writes and never goes back, across both replicas', async () => {
    await db.execute('INSERT INTO counters(id, n) VALUES (2, 0), (3, 0)')
    await caughtUp()
    const served = new Map<string, number>()
    const session = async (client: TandemClient, id: number) => {
      let lastSeen = 0
      for (let i = 1; i <= 60; i++) {
        await client.execute('UPDATE counters SET n = ? WHERE id = ?', [i, id])
        const [row] = await client.query<{ n: number }>('SELECT n FROM counters WHERE id = ?', [id])
        assert.equal(row!.n, i, `session ${id}: iteration ${i} read ${row!.n}`)
        const again = await client.query<{ n: number }>('SELECT n FROM counters WHERE id = ?', [id])
        assert.ok(again[0]!.n >= lastSeen, 'monotonic')
        lastSeen = again[0]!.n
        served.set(again.node, (served.get(again.node) ?? 0) + 1)
      }
    }
    // Two sessions at once on one client's connections.
    await Promise.all([session(db.withSession(), 2), session(db.withSession(), 3)])
    for (const replica of cluster.replicas) assert.ok((served.get(replica.url) ?? 0) > 0, `replica ${replica.url} served reads: ${JSON.stringify([...served])}`)
  })

  test('reads spread over both replicas, and reads: master goes to the master', async () => {
    await caughtUp()
    const served = new Map<string, number>()
    for (let i = 0; i < 40; i++) {
      const rows = await db.query('SELECT count(*) AS n FROM items')
      served.set(rows.node, (served.get(rows.node) ?? 0) + 1)
    }
    for (const replica of cluster.replicas) assert.ok((served.get(replica.url) ?? 0) >= 5, `both replicas serve reads: ${JSON.stringify([...served])}`)
    const onMaster = await db.query('SELECT 1 AS one', [], { reads: 'master' })
    assert.equal(onMaster.node, cluster.master.url)
  })

  test('the client connects through a list whose first nodes are down', async () => {
    const replica = cluster.replicas[1]!
    const viaReplica = await connect([await deadUrl(), await deadUrl(), replica.url], { timeoutMs: 5_000 })
    clients.push(viaReplica)
    assert.equal(viaReplica.topology().master, cluster.master.url)
    const written = await viaReplica.execute('INSERT INTO items(name) VALUES (?)', ['via a list with dead nodes'])
    assert.equal(written.node, cluster.master.url)
    const rows = await viaReplica.query<{ name: string }>('SELECT name FROM items WHERE id = ?', [written.lastInsertId])
    assert.deepEqual(rows, [{ name: 'via a list with dead nodes' }])
    await assert.rejects(connect([await deadUrl()], { timeoutMs: 2_000 }), (error) => isTandemClientError(error, 'UNAVAILABLE'))
  })

  test('an AbortSignal aborts a waiting query; a deadline ends one with TIMEOUT', async () => {
    const controller = new AbortController()
    const ahead = db.session.lsn + 1_000_000 // no node reaches it: the read waits
    const waiting = db.query('SELECT 1', [], { minLsn: ahead, signal: controller.signal })
    setTimeout(() => controller.abort(), 100)
    await assert.rejects(waiting, (error) => isTandemClientError(error, 'ABORTED') && error.name === 'AbortError')
    await assert.rejects(db.query('SELECT 1', [], { minLsn: ahead, timeoutMs: 300 }), (error) => isTandemClientError(error, 'TIMEOUT'))
    assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }], 'the client is fine afterwards')
  })

  test('a replica that dies is skipped: its reads go to the other nodes', async () => {
    const victim = cluster.replicas[0]!
    await victim.kill('SIGKILL')
    try {
      for (let i = 0; i < 20; i++) {
        const rows = await db.query<{ n: number }>('SELECT count(*) AS n FROM items')
        assert.notEqual(rows.node, victim.url)
      }
    } finally {
      await victim.restart()
    }
    await cluster.converged()
  })

  test('an idempotent write repeated with its key answers with the first LSN and applies once', async () => {
    const key = `idem-${process.pid}-1`
    const first = await db.execute('INSERT INTO items(name) VALUES (?)', [key], { idempotencyKey: key })
    const again = await db.execute('INSERT INTO items(name) VALUES (?)', [key], { idempotencyKey: key })
    assert.equal(first.replayed, false)
    assert.equal(again.replayed, true)
    assert.equal(again.lsn, first.lsn)
    assert.equal(again.lastInsertId, first.lastInsertId)
    assert.deepEqual(await db.query('SELECT count(*) AS n FROM items WHERE name = ?', [key]), [{ n: 1 }])
    await assert.rejects(db.execute('INSERT INTO items(name) VALUES (?)', ['something else'], { idempotencyKey: key }), (error) =>
      isTandemClientError(error, 'IDEMPOTENCY_KEY_REUSED') && error.status === 422)
  })

  test('a write with sync=2 is confirmed by both replicas', async () => {
    const out = await db.execute('INSERT INTO items(name) VALUES (?)', ['synced'], { sync: 2, syncTimeoutMs: 5_000 })
    assert.deepEqual(out.sync, { required: 2, confirmed: 2 })
  })

  test('a sync write no replica confirms in time is a SyncTimeoutError: committed once, not retried', async () => {
    for (const replica of cluster.replicas) replica.pause()
    let lsn = 0
    try {
      await assert.rejects(db.execute('INSERT INTO items(name) VALUES (?)', ['unconfirmed'], { sync: 1, syncTimeoutMs: 300 }), (error) => {
        assert.ok(error instanceof SyncTimeoutError, String(error))
        assert.equal(error.sync.required, 1)
        assert.equal(error.sync.confirmed, 0)
        assert.equal(error.isRetryable, false)
        lsn = error.lsn
        return true
      })
      assert.equal(db.session.lsn, lsn, 'the session holds the committed write')
      assert.deepEqual(await db.query('SELECT count(*) AS n FROM items WHERE name = ?', ['unconfirmed'], { reads: 'master' }), [{ n: 1 }])
    } finally {
      for (const replica of cluster.replicas) replica.resume()
    }
    await cluster.converged()
  })

  test('a write to a paused master times out as an IndeterminateWriteError and is never sent twice', async () => {
    cluster.master.pause()
    try {
      await assert.rejects(db.execute('INSERT INTO items(name) VALUES (?)', ['in doubt'], { timeoutMs: 500 }), (error) => {
        assert.ok(error instanceof IndeterminateWriteError, String(error))
        assert.equal(error.code, 'INDETERMINATE_WRITE')
        assert.equal(error.reason, 'timeout')
        assert.equal(error.isRetryable, false)
        return true
      })
    } finally {
      cluster.master.resume()
    }
    // Applied once or not at all, never twice.
    await db.execute('INSERT INTO items(name) VALUES (?)', ['after the pause'])
    const [row] = await db.query<{ n: number }>('SELECT count(*) AS n FROM items WHERE name = ?', ['in doubt'], { reads: 'master' })
    assert.ok(row!.n <= 1, `applied ${row!.n} times`)
  })

  test('an indeterminate write repeated with its idempotency key applies exactly once', async () => {
    const key = `idem-${process.pid}-paused`
    cluster.master.pause()
    let error: unknown
    try {
      error = await db.execute('INSERT INTO items(name) VALUES (?)', [key], { idempotencyKey: key, timeoutMs: 500 }).then(() => undefined, (e: unknown) => e)
    } finally {
      cluster.master.resume()
    }
    assert.ok(error instanceof IndeterminateWriteError, String(error))
    assert.equal(error.idempotencyKey, key)
    assert.equal(error.isRetryable, true)
    const retried = await waitFor(
      () => db.execute('INSERT INTO items(name) VALUES (?)', [key], { idempotencyKey: error.idempotencyKey! }),
      10_000,
      () => 'the retried write',
    )
    assert.ok(retried.lsn > 0)
    assert.deepEqual(await db.query('SELECT count(*) AS n FROM items WHERE name = ?', [key]), [{ n: 1 }])
  })
})
