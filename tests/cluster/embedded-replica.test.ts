import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openReplica, type EmbeddedReplica } from '../../src/index.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { execute, get } from '../harness/http.ts'
import { silentLogger } from '../../src/shared/logger.ts'
import { NodeProcess } from '../harness/node-process.ts'

const silent = { logger: silentLogger }

describe('embedded replica', () => {
  let cluster: Cluster
  let dir: string
  const opened: EmbeddedReplica[] = []
  const open = async (path: string, options: { openTimeoutMs?: number; master?: string } = {}) => {
    const db = await openReplica({ master: cluster.master.url, path, ...silent, ...options })
    opened.push(db)
    return db
  }
  const ok = async (statements: unknown[]) => {
    const result = await execute(cluster.master.url, statements)
    assert.equal(result.status, 200, JSON.stringify(result.body))
    for (const r of result.body.results) assert.equal(r.error, undefined, JSON.stringify(result.body))
    return result.body.lsn
  }

  before(async () => {
    cluster = await Cluster.start({ replicas: 0 })
    dir = mkdtempSync(join(tmpdir(), 'tandem-embedded-'))
    await ok(['CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, picked TEXT DEFAULT CURRENT_TIMESTAMP)'])
    await ok([['INSERT INTO fruit(name) VALUES (?)', 'apple'], ['INSERT INTO fruit(name) VALUES (?)', 'pear']])
  })
  after(async () => {
    await Promise.all(opened.map((db) => db.close()))
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  let db: EmbeddedReplica
  const names = () => db.query<{ name: string }>('SELECT name FROM fruit ORDER BY id').map((r) => r.name)

  test('an empty directory opens with a copy of the master, and the master lists the replica', async () => {
    db = await open(join(dir, 'app'))
    assert.deepEqual(names(), ['apple', 'pear'])
    assert.equal(db.position.lsn, (await get<{ position: { lsn: number } }>(`${cluster.master.url}/status`)).body.position.lsn)
    const nodes = await get<Record<string, { api_addr: string; addr: string; role: string }>>(`${cluster.master.url}/nodes`)
    assert.equal(nodes.status, 200, JSON.stringify(nodes.body))
    const self = nodes.body[db.nodeId]
    assert.ok(self !== undefined, JSON.stringify(nodes.body))
    assert.match(self.api_addr, /^embedded:\/\/[^/]+\/\d+$/)
    assert.equal(self.role, 'replica')
  })

  test('reads see a write made on the master after waitFor(lsn) and after sync()', async () => {
    const lsn = await ok([['INSERT INTO fruit(name) VALUES (?)', 'plum']])
    await db.waitFor(lsn)
    assert.ok(db.position.lsn >= lsn)
    assert.ok(names().includes('plum'))
    await ok([['INSERT INTO fruit(name) VALUES (?)', 'quince']])
    await db.sync()
    assert.ok(names().includes('quince'))
    assert.equal(db.get<{ n: number }>('SELECT count(*) AS n FROM fruit WHERE name = ?', ['quince'])?.n, 1)
    assert.equal(db.get('SELECT * FROM fruit WHERE name = :name', { name: 'none' }), undefined)
  })

  test('a write through the embedded replica, then sync(), is read back locally', async () => {
    const inserted = await db.execute('INSERT INTO fruit(name) VALUES (?)', ['fig'])
    assert.equal(inserted.rowsAffected, 1)
    assert.equal(inserted.replayed, false)
    await db.sync()
    const fig = db.get<{ id: number; name: string }>('SELECT id, name FROM fruit WHERE name = ?', ['fig'])
    assert.deepEqual({ ...fig }, { id: inserted.lastInsertId, name: 'fig' })

    const batch = await db.batch(['INSERT INTO fruit(name) VALUES (\'kiwi\')', { sql: 'UPDATE fruit SET name = ? WHERE name = ?', params: ['kiwi fruit', 'kiwi'] }])
    assert.deepEqual(batch.results.map((r) => r.rowsAffected), [1, 1])
    await db.waitFor(batch.lsn)
    assert.ok(names().includes('kiwi fruit'))
  })

  test('exact values: 64-bit integers and BLOBs round-trip through a write and a local read', async () => {
    await db.execute('CREATE TABLE kinds (id INTEGER PRIMARY KEY, big INTEGER, data BLOB, real REAL)')
    const big = 9223372036854775807n
    const { lsn } = await db.execute('INSERT INTO kinds VALUES (1, ?, ?, ?)', [big, new Uint8Array([0, 1, 254, 255]), 1.5])
    await db.waitFor(lsn)
    const row = db.get<{ big: bigint; data: Uint8Array; real: number }>('SELECT big, data, real FROM kinds WHERE id = 1')
    assert.equal(row?.big, big)
    assert.deepEqual([...(row?.data ?? [])], [0, 1, 254, 255])
    assert.equal(row?.real, 1.5)
    const returned = await db.execute('UPDATE kinds SET real = real * 2 WHERE id = 1 RETURNING id, real, data')
    assert.deepEqual(returned.rows, [{ id: 1, real: 3, data: new Uint8Array([0, 1, 254, 255]) }])
  })

  test('errors say what happened: SQL errors, refusals, writes sent to the local copy', async () => {
    const before = db.position.lsn
    await assert.rejects(db.execute('INSERT INTO fruit(name) VALUES (?)', ['apple']), (error: Error & { code?: string; rolledBack?: boolean; lsn?: number }) => {
      assert.equal(error.code, 'SQL_ERROR')
      assert.match(error.message, /UNIQUE/)
      assert.equal(error.rolledBack, true)
      assert.equal(error.lsn, undefined)
      return true
    })
    // A transaction that fails in its second statement applies nothing.
    await assert.rejects(db.batch(["INSERT INTO fruit(name) VALUES ('lime')", "INSERT INTO fruit(name) VALUES ('apple')"]), { code: 'SQL_ERROR', statementIndex: 1, rolledBack: true })
    // The master's own codes come back as they are, in the client library's errors.
    await assert.rejects(db.execute('CREATE TABLE nokey (x, _rowid_)'), { name: 'TandemClientError', code: 'SCHEMA_REFUSED' })
    await assert.rejects(db.execute('VACUUM'), { code: 'SQL_REFUSED' })
    // Local reads: writes are refused before they run, SQL errors are SqlErrors.
    assert.throws(() => db.query("INSERT INTO fruit(name) VALUES ('x')"), { code: 'NOT_MASTER' })
    assert.throws(() => db.query('ATTACH DATABASE ? AS other', ['/tmp/x.db']), { code: 'SQL_REFUSED' })
    assert.throws(() => db.query('SELECT * FROM no_such_table'), { name: 'SqlError', code: 'SQL_ERROR', message: /no such table/ })
    await db.sync()
    assert.deepEqual(db.query("SELECT name FROM fruit WHERE name = 'lime'"), [])
    assert.ok(db.position.lsn >= before)
  })

  test('a second replica cannot open a directory in use', async () => {
    await assert.rejects(openReplica({ master: cluster.master.url, path: join(dir, 'app'), ...silent }), { code: 'BAD_REQUEST', message: /in use/ })
  })

  test('closed and reopened on the same directory, it resumes from its position without a snapshot', async () => {
    await db.sync()
    const position = db.position
    await db.close()
    assert.throws(() => db.query('SELECT 1'), { code: 'CLOSED' })
    const lsn = await ok([['INSERT INTO fruit(name) VALUES (?)', 'written while closed']])

    db = await open(join(dir, 'app'))
    // Opening a directory with data does not wait for the master: this is the stored position.
    assert.deepEqual(db.position, position)
    await db.waitFor(lsn)
    assert.ok(names().includes('written while closed'))
    assert.equal(db.status().snapshotsInstalled, 0)
  })

  test('with the master killed, it keeps answering reads and reports its staleness', async () => {
    await db.sync()
    const count = db.query('SELECT * FROM fruit').length
    await cluster.master.kill('SIGKILL')

    const first = await waitFor(() => {
      const s = db.staleness()
      return !s.connected && s.sinceContactMs !== undefined ? s.sinceContactMs : undefined
    }, 10_000, () => `the replica noticing its master is gone: ${JSON.stringify(db.status())}`)
    assert.equal(db.query('SELECT * FROM fruit').length, count)
    await waitFor(() => ((db.staleness().sinceContactMs ?? 0) > first ? true : undefined), 10_000, () => 'sinceContactMs growing')
    assert.equal(db.staleness().connected, false)

    // Nothing was sent, so nothing was applied: UNAVAILABLE, for writes and for sync().
    await assert.rejects(db.execute("INSERT INTO fruit(name) VALUES ('lost')"), { code: 'UNAVAILABLE' })
    await assert.rejects(db.sync({ timeoutMs: 1000 }), { code: 'UNAVAILABLE' })
    await assert.rejects(db.waitFor(db.position.lsn + 1, { timeoutMs: 100 }), { code: 'MIN_LSN_TIMEOUT' })
  })

  test('with the master down, a directory with data opens and serves it; an empty one is refused', async () => {
    const count = db.query('SELECT * FROM fruit').length
    await db.close()
    db = await open(join(dir, 'app'))
    assert.equal(db.query('SELECT * FROM fruit').length, count)
    assert.equal(db.staleness().connected, false)

    await assert.rejects(openReplica({ master: cluster.master.url, path: join(dir, 'empty'), openTimeoutMs: 500, ...silent }), { code: 'UNAVAILABLE' })
    // The refused open released the directory: it opens once the master is back (next test).
  })

  test('the master restarted on its data: the replica reconnects and catches up', async () => {
    await cluster.master.restart()
    const lsn = await ok([['INSERT INTO fruit(name) VALUES (?)', 'after restart']])
    await db.waitFor(lsn, { timeoutMs: 15_000 })
    assert.ok(names().includes('after restart'))
    assert.equal(db.staleness().connected, true)
    assert.equal(db.staleness().lagEntries, 0)
    const written = await db.execute("INSERT INTO fruit(name) VALUES ('via replica after restart')")
    await db.waitFor(written.lsn)
    assert.ok(names().includes('via replica after restart'))

    const empty = await open(join(dir, 'empty'))
    assert.deepEqual(empty.query('SELECT name FROM fruit ORDER BY id'), db.query('SELECT name FROM fruit ORDER BY id'))
  })

  test('a write whose answer is lost is reported as indeterminate, and its idempotency key applies it once', async () => {
    const impatient = await openReplica({ master: cluster.master.url, path: join(dir, 'impatient'), requestTimeoutMs: 1000, ...silent })
    opened.push(impatient)
    // A replica of its own for the write without a key: after a lost answer, a replica's client
    // sends nothing more until it has found the master again (such a write fails with nothing applied).
    const keyless = await openReplica({ master: cluster.master.url, path: join(dir, 'keyless'), requestTimeoutMs: 1000, ...silent })
    opened.push(keyless)
    cluster.master.pause()
    const key = `once-${process.pid}`
    try {
      const error = await impatient.execute("INSERT INTO fruit(name) VALUES ('once')", undefined, { idempotencyKey: key }).then(
        () => assert.fail('the write cannot be answered by a paused master'),
        (e: unknown) => e as Error & { code?: string; idempotencyKey?: string },
      )
      assert.equal(error.name, 'IndeterminateWriteError', error.message)
      assert.equal(error.code, 'INDETERMINATE_WRITE', error.message)
      assert.equal(error.idempotencyKey, key)
      // Without a key it is not sent again: the answer is indeterminate at once.
      await assert.rejects(keyless.execute("INSERT INTO fruit(name) VALUES ('maybe')"), { code: 'INDETERMINATE_WRITE', idempotencyKey: undefined })
    } finally {
      cluster.master.resume()
    }
    const again = await impatient.execute("INSERT INTO fruit(name) VALUES ('once')", undefined, { idempotencyKey: key })
    assert.equal(again.replayed, true)
    await impatient.sync()
    assert.equal(impatient.get<{ n: number }>("SELECT count(*) AS n FROM fruit WHERE name = 'once'")?.n, 1, 'applied exactly once')
  })

  test('close() ends waits in progress, and aborting the signal closes the replica', async () => {
    const waiting = assert.rejects(db.waitFor(db.position.lsn + 1_000_000, { timeoutMs: 60_000 }), { code: 'CLOSED' })
    await db.close()
    await waiting

    const controller = new AbortController()
    db = await openReplica({ master: cluster.master.url, path: join(dir, 'app'), signal: controller.signal, ...silent })
    opened.push(db)
    controller.abort()
    await waitFor(() => {
      try {
        db.query('SELECT 1')
        return undefined
      } catch (error) {
        return (error as { code?: string }).code === 'CLOSED' ? true : undefined
      }
    }, 5000, () => 'the aborted replica closing')
  })
})

describe('embedded replica pointed at a replica', () => {
  let cluster: Cluster
  let dir: string
  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    dir = mkdtempSync(join(tmpdir(), 'tandem-embedded-'))
  })
  after(async () => {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('an empty directory does not open on a replica URL, and says why', async () => {
    const replica: NodeProcess = cluster.replicas[0]!
    await assert.rejects(openReplica({ master: replica.url, path: join(dir, 'r'), openTimeoutMs: 10_000, ...silent }), { code: 'NOT_MASTER' })
  })
})

describe('embedded replica behind the master retained log', () => {
  let cluster: Cluster
  let dir: string
  const opened: EmbeddedReplica[] = []
  before(async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--log-retain-bytes', '1'] })
    dir = mkdtempSync(join(tmpdir(), 'tandem-embedded-'))
  })
  after(async () => {
    await Promise.all(opened.map((db) => db.close()))
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('reopened behind the log, it serves its old copy until a snapshot replaces it, then the new one', async () => {
    await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('first')"])
    let db = await openReplica({ master: cluster.master.url, path: join(dir, 'a'), ...silent })
    opened.push(db)
    const count = 'SELECT count(*) AS n FROM t'
    assert.equal(db.get<{ n: number }>(count)?.n, 1)
    const position = db.position
    await db.close()

    let lsn = 0
    for (let i = 0; i < 200; i++) lsn = (await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', `burst ${i}`]])).body.lsn
    await waitFor(async () => {
      const master = (await cluster.status(cluster.master.url))['master'] as { log_oldest_lsn: number }
      return master.log_oldest_lsn > position.lsn + 1 ? true : undefined
    }, 10_000, () => 'the master to truncate its log')

    db = await openReplica({ master: cluster.master.url, path: join(dir, 'a'), ...silent })
    opened.push(db)
    // No await since open: the follower has not even connected. This is the stored copy.
    assert.equal(db.get<{ n: number }>(count)?.n, 1)
    assert.deepEqual(db.position, position)
    await waitFor(() => (db.status().snapshotsInstalled >= 1 && db.staleness().connected ? true : undefined), 20_000, () => `a snapshot install: ${JSON.stringify(db.status())}`)
    await db.waitFor(lsn)
    assert.equal(db.get<{ n: number }>(count)?.n, 201)
  })
})
