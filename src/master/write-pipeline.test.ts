import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LogStore } from '../replication-log/log-store.ts'
import type { LogEntry } from '../replication-log/log-entry.ts'
import { SchemaGeneration, openWriter } from '../storage/index.ts'
import { systemClock } from '../shared/clock.ts'
import { silentLogger } from '../shared/logger.ts'
import { isTandemError } from '../shared/errors.ts'
import { WritePipeline } from './write-pipeline.ts'

/**
 * A pipeline whose entries may hold at most `entryBytesMax` bytes of encoded ops; with
 * `budgetMs`, requests past it run on the long-write thread.
 */
function pipelineWith(entryBytesMax: number, budgetMs?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-pipeline-'))
  const dbPath = join(dir, 'master.db')
  const writer = openWriter(dbPath, 'off', budgetMs ?? 0)
  LogStore.ensureSchema(writer.connection, (fn) => writer.policy.internally(fn))
  const log = new LogStore(writer.connection, (fn) => writer.policy.internally(fn))
  const entries: LogEntry[] = []
  const pipeline = new WritePipeline({
    writer, log, schema: new SchemaGeneration(), clock: systemClock, logger: silentLogger, queueMax: 1000, batchMax: 100, entryBytesMax,
    onCommit: (entry) => entries.push(entry),
    ...(budgetMs === undefined ? {} : { longWrites: { dbPath, synchronous: 'off' as const, queryTimeoutMs: 0, budgetMs } }),
  })
  const write = (...sql: string[]) => pipeline.submit({ transaction: false, statements: sql.map((s) => ({ sql: s })) })
  const count = () => (writer.connection.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
  const close = async () => {
    await pipeline.stop()
    writer.connection.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return { write, entries, count, close, pipeline, log }
}

/** Takes well over 5 ms of SQLite: counts to 3 million. */
const slowInsert = 'INSERT INTO t(b) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000000) SELECT x FROM c WHERE x % 1000000 = 0)'

test('a request past the budget commits from the long-write thread, between the entries of the event loop, none lost', async () => {
  const p = pipelineWith(1 << 20, 5)
  try {
    await p.write('CREATE TABLE t (id INTEGER PRIMARY KEY, b)')
    const shortOnes = (n: number) => Array.from({ length: n }, (_, i) => p.write(`INSERT INTO t(b) VALUES (${i})`))
    const outcomes = await Promise.all([...shortOnes(5), p.write(slowInsert), ...shortOnes(5)])
    assert.equal(p.pipeline.longWrites, 1)
    assert.deepEqual(outcomes[5]!.results.map((r) => r.kind === 'exec' && r.rowsAffected), [3])
    assert.equal(p.count(), 13)
    // Every entry is in the log, contiguous, each with the LSN its requests were answered.
    const lsns = p.entries.map((e) => e.lsn)
    assert.deepEqual(lsns, Array.from({ length: lsns.length }, (_, i) => i + 1))
    assert.deepEqual(p.log.read(1, 100, 1 << 30).map((e) => e.lsn), lsns)
    for (const outcome of outcomes) assert.ok(lsns.includes(outcome.lsn))
    assert.equal(p.pipeline.lastLsn, lsns.at(-1))
  } finally {
    await p.close()
  }
})

test('many short statements past the budget together move the request too, whole; a refused request answers its error from the thread', async () => {
  const p = pipelineWith(1 << 20, 5)
  try {
    await p.write('CREATE TABLE t (id INTEGER PRIMARY KEY, b)')
    const many = Array.from({ length: 40 }, () => 'INSERT INTO t(b) SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) SELECT x FROM c)')
    const outcome = await p.write(...many)
    assert.equal(outcome.results.length, 40)
    assert.equal(p.count(), 40)
    assert.equal(p.pipeline.longWrites, 1)
    await assert.rejects(p.pipeline.submit({ transaction: true, statements: [{ sql: slowInsert }, { sql: 'CREATE TABLE nokey (a, _rowid_)' }] }), (error) => isTandemError(error, 'SCHEMA_REFUSED'))
    assert.equal(p.pipeline.longWrites, 2)
    assert.equal(p.count(), 40, 'nothing of the refused request was applied')
  } finally {
    await p.close()
  }
})

test('a request whose entry is too large is refused whole with ENTRY_TOO_LARGE', async () => {
  const p = pipelineWith(10_000)
  try {
    await p.write('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)')
    const before = p.entries.length
    await assert.rejects(p.write('INSERT INTO t(b) VALUES (zeroblob(20000))'), (error) => isTandemError(error, 'ENTRY_TOO_LARGE'))
    assert.equal(p.entries.length, before)
    assert.equal(p.count(), 0)
  } finally {
    await p.close()
  }
})

test('a group-committed batch too large for one entry commits one request per entry, and none is lost', async () => {
  const p = pipelineWith(10_000)
  try {
    await p.write('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)')
    const before = p.entries.length
    // Submitted in one turn: they form one batch, whose entry (4 × 4,000 bytes) is too large.
    const outcomes = await Promise.all(Array.from({ length: 4 }, () => p.write('INSERT INTO t(b) VALUES (zeroblob(4000))')))
    assert.equal(p.count(), 4)
    const lsns = outcomes.map((o) => o.lsn)
    assert.equal(new Set(lsns).size, 4, `each request has an entry of its own: ${lsns.join(', ')}`)
    assert.equal(p.entries.length - before, 4)
    for (const entry of p.entries.slice(before)) assert.ok(entry.ops.length <= 10_000)
  } finally {
    await p.close()
  }
})
