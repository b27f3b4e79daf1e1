import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LogStore } from '../replication-log/log-store.ts'
import { SchemaGeneration, openApplier, openWriter, replaceDatabase, type SqlStatement } from '../storage/index.ts'
import { isTandemError } from '../shared/errors.ts'
import { silentLogger } from '../shared/logger.ts'
import { resultsJson } from '../http-api/read-answer.ts'
import { LocalReads } from './local-reads.ts'
import { ReadPool } from './read-pool.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-read-pool-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
const integers = [9223372036854775807n, -9223372036854775808n, 9007199254740993n, 9007199254740991, -1, 0]

/** A database as a node holds one: Tandem's own tables plus a user table with BLOBs and 64-bit integers. */
function database(name: string, label: string): string {
  const path = join(dir, name)
  const writer = openWriter(path, 'off')
  LogStore.ensureSchema(writer.connection, (fn) => writer.policy.internally(fn))
  // Literal SQL, no prepared statement: one left unfinalized would keep the file open in this
  // process after close(), and SQLite would then trip over it when the file is renamed.
  const blob = `X'${Buffer.from(bytes).toString('hex')}'`
  const rows = integers.map((n) => `('${label}', ${n}, ${blob})`).join(', ')
  writer.policy.internally(() => writer.connection.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT, n INTEGER, b BLOB); INSERT INTO t (label, n, b) VALUES ${rows}`))
  writer.connection.close()
  return path
}

/** A read that keeps its thread busy for a while (a few hundred ms). */
const slow: SqlStatement = { sql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) FROM c' }

async function outcome(run: () => unknown): Promise<unknown> {
  try {
    return { value: await run() }
  } catch (error) {
    return { code: isTandemError(error) ? error.code : undefined, message: error instanceof Error ? error.message : String(error) }
  }
}

function withoutTimes(value: unknown): unknown {
  const v = value as { value?: { timeSec?: number }[] }
  if (Array.isArray(v.value)) return { value: v.value.map(({ timeSec: _timeSec, ...rest }) => rest) }
  return value
}

async function waitUntil(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('read pool', () => {
  const path = database('main.db', 'first')
  const pool = new ReadPool({ dbPath: path, threads: 2, queueMax: 256, logger: silentLogger, schema: new SchemaGeneration() })
  const local = new LocalReads(path, new SchemaGeneration())
  after(async () => {
    await pool.close()
  })

  test('answers exactly as a read on the main thread does, refusals and errors included', async () => {
    const requests: [SqlStatement[], boolean][] = [
      [[{ sql: 'SELECT n, b FROM t ORDER BY id' }], false],
      [[{ sql: 'SELECT ? AS big, ? AS blob, :name AS named', params: [9223372036854775807n, bytes] }], false],
      [[{ sql: 'SELECT :x AS x', params: { x: 'named' } }, { sql: 'SELECT count(*) FROM t' }], true],
      [[{ sql: 'SELECT * FROM no_such_table' }], false],
      [[{ sql: "INSERT INTO t (label) VALUES ('x')" }], false],
      [[{ sql: 'DELETE FROM t' }], true],
      [[{ sql: "ATTACH DATABASE '/tmp/other.db' AS other" }], false],
      [[{ sql: 'BEGIN' }], false],
      [[{ sql: 'PRAGMA user_version = 3' }], false],
      [[{ sql: 'VACUUM' }], false],
      [[{ sql: 'CREATE TEMP TABLE x (a)' }], false],
      [[{ sql: "SELECT load_extension('x')" }], false],
      [[{ sql: 'SELECT 1; SELECT 2', params: [1] }], false],
      [[{ sql: '   ' }], false],
      [[{ sql: 'PRAGMA table_info(t)' }], false],
    ]
    for (const [statements, transaction] of requests) {
      const expected = withoutTimes(await outcome(() => local.query(statements, transaction)))
      const actual = withoutTimes(await outcome(() => pool.query(statements, transaction)))
      assert.deepEqual(actual, expected, `${JSON.stringify(statements, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))} transaction=${transaction}`)
    }
  })

  test('JSON answers from a read thread have the bytes the main thread formats from the results', async () => {
    const requests: SqlStatement[][] = [
      [{ sql: 'SELECT id, label, n, b FROM t ORDER BY id' }],
      [{ sql: 'SELECT ? AS big, ? AS blob, CAST(b AS TEXT) AS t, 1.5 AS f, NULL AS z FROM t LIMIT 2', params: [9223372036854775807n, bytes] }],
      [{ sql: 'SELECT * FROM t WHERE id < 0' }, { sql: 'SELECT * FROM no_such_table' }, { sql: "INSERT INTO t (label) VALUES ('x')" }],
      [{ sql: 'PRAGMA table_info(t)' }],
    ]
    for (const statements of requests) {
      for (const associative of [false, true]) {
        for (const blobArray of [false, true]) {
          for (const timings of [false, true]) {
            const format = { associative, timings, blobArray }
            const expected = resultsJson(local.query(statements, false), format)
            const actual = await pool.queryJson(statements, false, format)
            // Per-statement times differ from run to run.
            const timeless = (text: string) => (timings ? text.replace(/"time":[-+.\deE]+/g, '"time":0') : text)
            assert.equal(timeless(actual), timeless(expected), `${statements.map((s) => s.sql).join('; ')} ${JSON.stringify(format)}`)
          }
        }
      }
    }
    // Refusals are thrown as query()'s are.
    await assert.rejects(pool.queryJson([{ sql: "ATTACH DATABASE '/tmp/other.db' AS other" }], false, { associative: false, timings: false, blobArray: false }), (error) =>
      isTandemError(error, 'SQL_REFUSED'),
    )
  })

  test('BLOBs and 64-bit integers come back from a read thread exact', async () => {
    const [result] = await pool.query([{ sql: 'SELECT n, b FROM t ORDER BY id' }], false)
    assert.ok(result?.kind === 'rows')
    assert.deepEqual(result.values.map((row) => row[0]), integers.map((n) => (typeof n === 'bigint' ? n : n)))
    for (const row of result.values) {
      assert.ok(row[1] instanceof Uint8Array)
      assert.deepEqual([...row[1]], [...bytes])
    }
  })

  test('concurrent reads are spread over every thread', async () => {
    const before = pool.stats().workers.map((w) => w.served)
    await Promise.all(Array.from({ length: 200 }, (_, i) => pool.query([{ sql: 'SELECT label FROM t WHERE id = ?', params: [(i % 6) + 1] }], false)))
    const served = pool.stats().workers.map((w, i) => w.served - before[i]!)
    assert.equal(served.reduce((a, b) => a + b, 0), 200)
    assert.ok(served.every((n) => n > 0), `every thread served reads: ${served.join(', ')}`)
  })

  test('reads during a file swap answer NOT_READY, and after it every thread reads the new file', async () => {
    // Warm every thread's connection on the old file first.
    await Promise.all(Array.from({ length: 20 }, () => pool.query([{ sql: 'SELECT label FROM t' }], false)))
    const replacement = database('replacement.db', 'second')
    // As a snapshot install does: every connection to the file is closed before it is replaced.
    local.close()
    pool.closeConnections()
    const during = await outcome(() => pool.query([{ sql: 'SELECT 1' }], false))
    assert.deepEqual(during, { code: 'NOT_READY', message: 'this replica is installing a snapshot; retry shortly' })
    replaceDatabase(path, replacement)
    // The install reopens its read-write connection before the readers, as ReplicaRole does:
    // read-only connections expect a WAL database to have one.
    const applier = openApplier(path, 'off')
    pool.openConnections()
    const labels = await Promise.all(Array.from({ length: 40 }, () => pool.query([{ sql: 'SELECT DISTINCT label FROM t' }], false)))
    for (const [result] of labels) assert.deepEqual(result?.kind === 'rows' ? result.values : result, [['second']])
    applier.close()
    assert.ok(pool.stats().workers.every((w) => w.restarts === 0))
  })
})

describe('read pool limits and failures', () => {
  test('a read that finds every thread full is refused with OVERLOADED', async () => {
    const pool = new ReadPool({ dbPath: database('overload.db', 'x'), threads: 1, queueMax: 2, logger: silentLogger, schema: new SchemaGeneration() })
    try {
      const running = [pool.query([slow], false), pool.query([slow], false)]
      await assert.rejects(pool.query([{ sql: 'SELECT 1' }], false), (error) => isTandemError(error, 'OVERLOADED') && /retry later/.test(error.message))
      await Promise.all(running)
      assert.equal(pool.stats().overloaded, 1)
      // The queue drained: reads are taken again.
      await pool.query([{ sql: 'SELECT 1' }], false)
    } finally {
      await pool.close()
    }
  })

  test('reads queued behind a busy thread each get their own answer', async () => {
    const pool = new ReadPool({ dbPath: database('batch.db', 'x'), threads: 1, queueMax: 64, logger: silentLogger, schema: new SchemaGeneration() })
    try {
      const busy = pool.query([slow], false)
      const ids = Array.from({ length: 40 }, (_, i) => (i % integers.length) + 1)
      const answers = await Promise.all(ids.map((id) => pool.query([{ sql: 'SELECT id, n FROM t WHERE id = ?', params: [id] }], false)))
      assert.deepEqual(
        answers.map(([result]) => (result?.kind === 'rows' ? result.values : result)),
        ids.map((id) => [[id, integers[id - 1]]]),
      )
      await busy
      assert.equal(pool.stats().workers[0]!.served, 41)
    } finally {
      await pool.close()
    }
  })

  test('reads queued for a thread that dies run again on its replacement', async () => {
    const pool = new ReadPool({ dbPath: database('batch-crash.db', 'x'), threads: 1, queueMax: 64, logger: silentLogger, schema: new SchemaGeneration() })
    try {
      const busy = pool.query([slow], false)
      // The thread takes the crash after the slow read and before the reads sent after it.
      pool.crashThread(0)
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.query([{ sql: 'SELECT ? AS i', params: [i] }], false)))
      assert.deepEqual(
        answers.map(([result]) => (result?.kind === 'rows' ? result.values : result)),
        Array.from({ length: 20 }, (_, i) => [[i]]),
      )
      await busy
      assert.deepEqual(pool.stats().workers.map((w) => ({ restarts: w.restarts, running: w.running })), [{ restarts: 1, running: true }])
    } finally {
      await pool.close()
    }
  })

  test('a thread that dies is replaced and its read runs again on the new one', async () => {
    const pool = new ReadPool({ dbPath: database('crash.db', 'x'), threads: 1, queueMax: 8, logger: silentLogger, schema: new SchemaGeneration() })
    try {
      await pool.query([{ sql: 'SELECT 1' }], false)
      // The thread takes the crash before the read, so the read is in flight when it dies.
      pool.crashThread(0)
      const [result] = await pool.query([{ sql: 'SELECT count(*) FROM t' }], false)
      assert.deepEqual(result?.kind === 'rows' ? result.values : result, [[integers.length]])
      assert.deepEqual(pool.stats().workers.map((w) => ({ restarts: w.restarts, running: w.running })), [{ restarts: 1, running: true }])
    } finally {
      await pool.close()
    }
  })

  test('a read whose threads all die under it fails with a clear error, and the pool recovers', async () => {
    const pool = new ReadPool({ dbPath: database('crash-fail.db', 'x'), threads: 1, queueMax: 8, logger: silentLogger, schema: new SchemaGeneration(), attemptsMax: 1 })
    try {
      await pool.query([{ sql: 'SELECT 1' }], false)
      pool.crashThread(0)
      const failed = (await outcome(() => pool.query([{ sql: 'SELECT 1' }], false))) as { code?: string; message: string }
      assert.equal(failed.code, 'INTERNAL')
      assert.match(failed.message, /^the read thread running this read stopped \(exit code 1\); the node logged why$/)
      await waitUntil(() => pool.stats().workers[0]!.running, 'the thread to be replaced')
      const [result] = await pool.query([{ sql: 'SELECT 1' }], false)
      assert.deepEqual(result?.kind === 'rows' ? result.values : result, [[1]])
    } finally {
      await pool.close()
    }
  })
})
