import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { openReader, openWriter } from './database.ts'
import { StatementLimits, effectiveLimitMs, isInterrupted } from './statement-limits.ts'
import { queryTimeoutError, runClientStatement } from './statement-runner.ts'

const runaway = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c'
/** Long enough for the guard to look at it (it does every 1000 steps of SQLite's machine). */
const counting = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) SELECT count(*) FROM c'

function database(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tandem-limits-')), 'tandem.db')
  const writer = openWriter(path, 'normal')
  writer.connection.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, \'one\')')
  writer.connection.close()
  return path
}

test('the statement guard is built: without it no statement could be stopped', () => {
  assert.equal(StatementLimits.unavailableReason, undefined)
})

test('a statement past its limit is stopped, answered query timeout, and the connection reads on', () => {
  const reader = openReader(database(), 200)
  assert.ok(reader.watched !== undefined)
  const result = runClientStatement(reader, { sql: runaway })
  assert.deepEqual({ kind: result.kind, error: result.kind === 'error' ? result.error : undefined }, { kind: 'error', error: queryTimeoutError })
  const next = runClientStatement(reader, { sql: 'SELECT v FROM t WHERE id = 1' })
  assert.equal(next.kind, 'rows')
  assert.deepEqual(next.kind === 'rows' ? next.values : [], [['one']])
  reader.connection.close()
})

test('a request may lower the limit, never raise it; 0 or none asks for the node\'s', () => {
  assert.equal(effectiveLimitMs(undefined, 30_000), 30_000)
  assert.equal(effectiveLimitMs(0, 30_000), 30_000)
  assert.equal(effectiveLimitMs(500, 30_000), 500)
  assert.equal(effectiveLimitMs(60_000, 30_000), 30_000)
  assert.equal(effectiveLimitMs(500, 0), 500)
  assert.equal(effectiveLimitMs(undefined, 0), 0)
  // Without a limit of its own, the connection stops the runaway at the one given for a run.
  const reader = openReader(database(), 0)
  const result = reader.watched!.withLimit(100, () => runClientStatement(reader, { sql: runaway }))
  assert.equal(result.kind === 'error' ? result.error : result.kind, queryTimeoutError)
  reader.connection.close()
})

test('a cancel raised between two statements stops the next one, which says so; then the connection reads again', () => {
  const reader = openReader(database(), 0)
  const limits = StatementLimits.forThisThread()!
  limits.cancel(reader.watched!.id)
  assert.throws(() => runClientStatement(reader, { sql: counting }), (error: unknown) => (error as { code?: string }).code === 'CANCELLED')
  const next = runClientStatement(reader, { sql: counting })
  assert.deepEqual(next.kind === 'rows' ? next.values : next, [[20000]])
  reader.connection.close()
})

test('client SQL reaches none of the guard\'s functions, and cannot load an extension', () => {
  const reader = openReader(database(), 0)
  for (const sql of ['SELECT tandem_guard_cancel(1)', 'SELECT tandem_guard_limit(1, 0)', 'SELECT tandem_guard_stop_on_signals()', 'SELECT tandem_guard_last()']) {
    const result = runClientStatement(reader, { sql })
    assert.equal(result.kind === 'error' ? result.error : result.kind, `no such function: ${sql.slice(7, sql.indexOf('('))}`)
  }
  // The policy refuses it by name; the connection would refuse it too (only the C API is enabled).
  assert.throws(() => runClientStatement(reader, { sql: "SELECT load_extension('x')" }), /load_extension\(\) is not allowed/)
  assert.throws(() => reader.connection.prepare("SELECT load_extension('x')").get(), /not authorized/)
  reader.connection.close()
})

test('another thread cancels a statement that has no time limit', async () => {
  const extension = fileURLToPath(new URL('../../build/statement-guard.so', import.meta.url))
  // The engine Tandem runs on (sqlite.ts, as built: an eval'd worker has no TypeScript loader),
  // since the guard must be loaded by one SQLite per process.
  const sqlite = new URL('../../dist/storage/sqlite.js', import.meta.url).href
  const path = database()
  // A thread running a statement that never ends by itself, on a watched connection.
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads')
    import(workerData.sqlite).then(({ openConnection }) => {
      const control = openConnection(':memory:', { extensions: true })
      control.enableLoadExtension(true)
      control.loadExtension(workerData.extension, 'sqlite3_tandemguard_control')
      const db = openConnection(workerData.path, { extensions: true })
      db.enableLoadExtension(true)
      db.loadExtension(workerData.extension, 'sqlite3_tandemguard_watch')
      db.enableLoadExtension(false)
      parentPort.postMessage({ id: control.prepare('SELECT tandem_guard_last() AS id').get().id })
      try {
        db.prepare(workerData.runaway).get()
        parentPort.postMessage({ finished: true })
      } catch (error) {
        parentPort.postMessage({ message: error.message, reason: control.prepare('SELECT tandem_guard_reason(?) AS r').get(control.prepare('SELECT tandem_guard_last() AS id').get().id).r })
      }
    })
    `,
    { eval: true, workerData: { extension, sqlite, path, runaway } },
  )
  const messages: Record<string, unknown>[] = []
  const outcome = await new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.on('error', reject)
    worker.on('message', (message: Record<string, unknown>) => {
      messages.push(message)
      if (typeof message['id'] === 'number') setTimeout(() => StatementLimits.forThisThread()!.cancel(message['id'] as number), 100)
      else resolve(message)
    })
  })
  await worker.terminate()
  assert.deepEqual(outcome, { message: 'interrupted', reason: 2 })
  assert.ok(isInterrupted(new Error('interrupted')))
})

test('a statement whose result passes the result limit is stopped, answered result too large; smaller ones run', () => {
  const limits = StatementLimits.forThisThread()!
  limits.setResultBytesMax(100_000)
  try {
    const reader = openReader(database(), 0)
    // 10,000 rows of one integer: 240,000 bytes as counted (16 + 8 per value).
    const big = runClientStatement(reader, { sql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10000) SELECT x FROM c' })
    assert.match(big.kind === 'error' ? big.error : big.kind, /^result too large: the statement's rows pass --max-result-bytes \(100000 bytes/)
    const small = runClientStatement(reader, { sql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) SELECT x FROM c' })
    assert.equal(small.kind === 'rows' ? small.values.length : small.kind, 1000)
    reader.connection.close()
  } finally {
    limits.setResultBytesMax(0)
  }
})

test("Tandem's own work runs free of the time and result limits, and the limits hold again after it", () => {
  const limits = StatementLimits.forThisThread()!
  limits.setResultBytesMax(1000)
  try {
    const reader = openReader(database(), 1)
    const rows = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 200000) SELECT x FROM c'
    const own = reader.watched!.exempt(() => reader.connection.prepare(rows).all())
    assert.equal(own.length, 200_000)
    const client = runClientStatement(reader, { sql: rows })
    assert.equal(client.kind, 'error')
    reader.connection.close()
  } finally {
    limits.setResultBytesMax(0)
  }
})

test('a statement that begins with a comment gets its whole limit, however long the connection sat idle', () => {
  const reader = openReader(database(), 200)
  runClientStatement(reader, { sql: 'SELECT 1' })
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400)
  const result = runClientStatement(reader, { sql: `-- counted from its own start\n${counting}` })
  assert.deepEqual(result.kind === 'rows' ? result.values : result, [[20000]])
  reader.connection.close()
})
