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

/** A pipeline whose entries may hold at most `entryBytesMax` bytes of encoded ops. */
function pipelineWith(entryBytesMax: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-pipeline-'))
  const writer = openWriter(join(dir, 'master.db'), 'off')
  LogStore.ensureSchema(writer.connection, (fn) => writer.policy.internally(fn))
  const log = new LogStore(writer.connection, (fn) => writer.policy.internally(fn))
  const entries: LogEntry[] = []
  const pipeline = new WritePipeline({
    writer, log, schema: new SchemaGeneration(), clock: systemClock, logger: silentLogger, queueMax: 1000, batchMax: 100, entryBytesMax,
    onCommit: (entry) => entries.push(entry),
  })
  const write = (sql: string) => pipeline.submit({ transaction: false, statements: [{ sql }] })
  const count = () => (writer.connection.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
  const close = () => {
    writer.connection.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return { write, entries, count, close }
}

test('a request whose entry is too large is refused whole with ENTRY_TOO_LARGE', async () => {
  const p = pipelineWith(10_000)
  try {
    await p.write('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)')
    const before = p.entries.length
    await assert.rejects(p.write('INSERT INTO t(b) VALUES (zeroblob(20000))'), (error) => isTandemError(error, 'ENTRY_TOO_LARGE'))
    assert.equal(p.entries.length, before)
    assert.equal(p.count(), 0)
  } finally {
    p.close()
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
    p.close()
  }
})
