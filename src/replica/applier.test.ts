import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WritePipeline, type WriteRequest } from '../master/write-pipeline.ts'
import { LogStore } from '../replication-log/log-store.ts'
import { createEntry, type LogEntry } from '../replication-log/log-entry.ts'
import { SchemaGeneration, checksumTables, openApplier, openWriter, type StatementResult } from '../storage/index.ts'
import { systemClock } from '../shared/clock.ts'
import { silentLogger } from '../shared/logger.ts'
import { isTandemError } from '../shared/errors.ts'
import { Applier } from './applier.ts'

/** A master pipeline and a replica applier in one process, entries handed over directly. */
function pair() {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-applier-'))
  const writer = openWriter(join(dir, 'master.db'), 'off')
  LogStore.ensureSchema(writer.connection, (fn) => writer.policy.internally(fn))
  const log = new LogStore(writer.connection, (fn) => writer.policy.internally(fn))
  const entries: LogEntry[] = []
  const pipeline = new WritePipeline({
    writer, log, schema: new SchemaGeneration(), clock: systemClock, logger: silentLogger, queueMax: 1000, batchMax: 100,
    onCommit: (entry) => entries.push(entry),
  })
  const replicaConnection = openApplier(join(dir, 'replica.db'), 'off')
  const applier = new Applier(replicaConnection, new SchemaGeneration())
  const write = (statements: (string | [string, ...unknown[]])[], transaction = false) =>
    pipeline.submit({
      transaction,
      statements: statements.map((s) => (typeof s === 'string' ? { sql: s } : { sql: s[0], params: s.slice(1) as never })),
    } satisfies WriteRequest)
  const sync = () => {
    applier.applyBatch(entries.splice(0))
  }
  const checksums = () => {
    sync()
    return [checksumTables(writer.connection).checksum, checksumTables(replicaConnection).checksum] as const
  }
  const query = (connection: 'master' | 'replica', sql: string) =>
    {
      const statement = (connection === 'master' ? writer.connection : replicaConnection).prepare(sql)
      statement.setReadBigInts(true)
      return statement.all().map((row) => ({ ...(row as object) }))
    }
  const reopen = () => new Applier(replicaConnection, new SchemaGeneration())
  const close = () => {
    writer.connection.close()
    replicaConnection.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return { write, sync, checksums, query, close, reopen, applier, pipeline, entries, log }
}

function errorsOf(results: StatementResult[]) {
  return results.filter((r) => r.kind === 'error').map((r) => (r.kind === 'error' ? r.error : ''))
}

test('non-deterministic functions and defaults replicate exactly', async () => {
  const p = pair()
  await p.write([
    `CREATE TABLE t(id INTEGER PRIMARY KEY, r INTEGER DEFAULT (random()), b BLOB DEFAULT (randomblob(16)),
       at TEXT DEFAULT CURRENT_TIMESTAMP, d TEXT DEFAULT (datetime('now')), v TEXT)`,
    `INSERT INTO t(v) VALUES ('a'), ('b'), ('c')`,
    `INSERT INTO t(v, r) VALUES ('d', random())`,
    `UPDATE t SET b = randomblob(8) WHERE id = 2`,
  ])
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  assert.deepEqual(p.query('replica', 'SELECT * FROM t'), p.query('master', 'SELECT * FROM t'))
  p.close()
})

test('triggers do not apply twice: audit, updated_at, conditional and unconditional deletes', async () => {
  const p = pair()
  await p.write([
    'CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT)',
    'CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)',
    'CREATE TABLE scratch(id INTEGER PRIMARY KEY, v TEXT)',
    `CREATE TRIGGER items_ai AFTER INSERT ON items BEGIN INSERT INTO audit(what) VALUES ('insert ' || new.id); END`,
    `CREATE TRIGGER items_au AFTER UPDATE OF name ON items BEGIN UPDATE items SET updated_at = datetime('now') || random() WHERE id = new.id; INSERT INTO audit(what) VALUES ('update ' || new.id); END`,
    `CREATE TRIGGER items_ad AFTER DELETE ON items BEGIN DELETE FROM audit WHERE what = 'insert ' || old.id; END`,
    `CREATE TRIGGER scratch_clear AFTER INSERT ON items WHEN new.name = 'reset' BEGIN DELETE FROM scratch; END`,
  ])
  await p.write([`INSERT INTO scratch(v) VALUES ('x'), ('y')`, `INSERT INTO items(name) VALUES ('one'), ('two'), ('three')`])
  await p.write([`UPDATE items SET name = 'uno' WHERE id = 1`, 'DELETE FROM items WHERE id = 2', `INSERT INTO items(name) VALUES ('reset')`])
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  assert.deepEqual(p.query('replica', 'SELECT count(*) AS n FROM scratch'), [{ n: 0n }])
  assert.deepEqual(p.query('replica', 'SELECT * FROM audit ORDER BY id'), p.query('master', 'SELECT * FROM audit ORDER BY id'))
  // Triggers are back after the apply transaction.
  assert.equal((p.query('replica', `SELECT count(*) AS n FROM sqlite_schema WHERE type = 'trigger'`)[0] as { n: bigint }).n, 4n)
  p.close()
})

test('FTS5 external content with its triggers gives identical MATCH results and passes integrity-check', async () => {
  const p = pair()
  await p.write([
    'CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)',
    `CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id')`,
    `CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts(rowid, body) VALUES (new.id, new.body); END`,
    `CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN INSERT INTO docs_fts(docs_fts, rowid, body) VALUES ('delete', old.id, old.body); END`,
    `CREATE TRIGGER docs_au AFTER UPDATE ON docs BEGIN INSERT INTO docs_fts(docs_fts, rowid, body) VALUES ('delete', old.id, old.body); INSERT INTO docs_fts(rowid, body) VALUES (new.id, new.body); END`,
  ])
  await p.write([`INSERT INTO docs(body) VALUES ('hello world'), ('goodbye moon'), ('hello moon')`])
  await p.write([`UPDATE docs SET body = 'hello sun' WHERE id = 2`, 'DELETE FROM docs WHERE id = 1'])
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  const match = `SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'hello' ORDER BY rowid`
  assert.deepEqual(p.query('replica', match), p.query('master', match))
  assert.deepEqual(p.query('replica', match).length, 2)
  p.query('replica', `SELECT 1`)
  assert.doesNotThrow(() => p.query('replica', `INSERT INTO docs_fts(docs_fts) VALUES ('integrity-check') RETURNING 1`))
  p.close()
})

test('ON DELETE CASCADE does not run twice, and AUTOINCREMENT state survives', async () => {
  const p = pair()
  await p.write([
    'CREATE TABLE parent(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)',
    'CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE)',
    `INSERT INTO parent(name) VALUES ('a'), ('b')`,
    'INSERT INTO child(parent_id) VALUES (1), (1), (2)',
  ])
  // Insert and delete in one batch: the row never reaches the changeset, the sequence still moves.
  await p.write([`INSERT INTO parent(name) VALUES ('gone')`, `DELETE FROM parent WHERE name = 'gone'`, 'DELETE FROM parent WHERE id = 1'])
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  assert.deepEqual(p.query('replica', 'SELECT id FROM child'), [{ id: 3n }])
  assert.deepEqual(p.query('replica', 'SELECT seq FROM sqlite_sequence'), [{ seq: 3n }])
  p.close()
})

test('ALTER TABLE, CREATE INDEX, views and DROP replicate, in order with row changes', async () => {
  const p = pair()
  await p.write(['CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT)', `INSERT INTO t(a) VALUES ('x')`])
  await p.write([
    `ALTER TABLE t ADD COLUMN b INTEGER DEFAULT 7`,
    `INSERT INTO t(a, b) VALUES ('y', 8)`,
    'CREATE INDEX t_b ON t(b)',
    'CREATE VIEW v AS SELECT a, b FROM t WHERE b > 7',
    'CREATE TABLE old(id INTEGER PRIMARY KEY)',
    'INSERT INTO old VALUES (1)',
    'DROP TABLE old',
    'ALTER TABLE t RENAME COLUMN a TO name',
  ])
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  assert.deepEqual(p.query('replica', 'SELECT * FROM v'), [{ name: 'y', b: 8n }])
  assert.deepEqual(p.query('replica', `SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 't_b'`), [{ name: 't_b' }])
  p.close()
})

test('tables without a PRIMARY KEY replicate by rowid: inserts, INSERT … SELECT, updates, deletes, triggers, cascades, rolled-back savepoints', async () => {
  const p = pair()
  await p.write([
    'CREATE TABLE owners(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)',
    'CREATE TABLE loose(a, b TEXT, r INTEGER DEFAULT (random()))',
    'CREATE TABLE notes(owner_id INTEGER REFERENCES owners(id) ON DELETE CASCADE, body TEXT)',
    'CREATE INDEX notes_by_owner ON notes(owner_id)',
    `CREATE TRIGGER owners_ai AFTER INSERT ON owners BEGIN INSERT INTO notes(owner_id, body) VALUES (new.id, 'welcome ' || new.name); END`,
  ])
  await p.write([`INSERT INTO owners(name) VALUES ('ann'), ('bob'), ('cy')`, `INSERT INTO loose(a, b) VALUES (1, 'one'), (2, 'two'), (2, 'two'), (3, NULL)`])
  await p.write([`INSERT INTO loose(a, b) SELECT a + 10, b || '!' FROM loose`, `INSERT INTO notes SELECT id, 'second ' || name FROM owners`])
  // Duplicate rows differ only by rowid: an update or delete must reach the same one everywhere.
  await p.write([`UPDATE loose SET b = 'changed', r = random() WHERE rowid = 3`, `DELETE FROM loose WHERE rowid IN (2, 5)`])
  await p.write([`DELETE FROM owners WHERE name = 'bob'`])
  await p.write([`ALTER TABLE loose ADD COLUMN c DEFAULT 7`, `UPDATE loose SET c = rowid * 2 WHERE a > 10`])
  // The highest rowid deleted, then inserted again: SQLite reuses it; the replica gets it from the master.
  await p.write([`DELETE FROM loose WHERE rowid = (SELECT max(rowid) FROM loose)`, `INSERT INTO loose(a) VALUES ('reused')`])
  // A statement that fails inside a batch rolls back alone; its row changes must not travel.
  const outcome = await p.write([`INSERT INTO loose(a) VALUES ('kept')`, `INSERT INTO notes(owner_id, body) VALUES (999, 'no such owner')`, `UPDATE loose SET b = 'after' WHERE a = 'kept'`])
  assert.equal(errorsOf(outcome.results).length, 1)
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  const everything = 'SELECT rowid, * FROM loose ORDER BY rowid'
  assert.deepEqual(p.query('replica', everything), p.query('master', everything))
  assert.deepEqual(p.query('replica', 'SELECT rowid, * FROM notes ORDER BY rowid'), p.query('master', 'SELECT rowid, * FROM notes ORDER BY rowid'))
  assert.deepEqual(p.query('replica', `SELECT count(*) AS n FROM notes WHERE owner_id = 2`), [{ n: 0n }], 'the cascade reached the replica once')
  assert.deepEqual(p.query('replica', `SELECT rowid FROM loose WHERE b = 'changed'`), [{ rowid: 3n }])
  assert.deepEqual(p.query('replica', `SELECT seq FROM sqlite_sequence WHERE name = 'owners'`), [{ seq: 3n }])
  p.close()
})

test('a table without a PRIMARY KEY whose column hides its rowid is refused and nothing of the request applies', async () => {
  const p = pair()
  await p.write(['CREATE TABLE ok(id INTEGER PRIMARY KEY)'])
  await assert.rejects(p.write([`INSERT INTO ok VALUES (1)`, 'CREATE TABLE nopk(a, _ROWID_)']), (e) => isTandemError(e, 'SCHEMA_REFUSED') && /_rowid_/.test(e.message))
  assert.deepEqual(p.query('master', `SELECT name FROM sqlite_schema WHERE name IN ('nopk')`), [])
  assert.deepEqual(p.query('master', 'SELECT * FROM ok'), [])
  p.close()
})

test('a failing statement in a transaction request rolls back the whole request, others in the batch commit', async () => {
  const p = pair()
  await p.write(['CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)'])
  const [a, b, c] = await Promise.all([
    p.write([`INSERT INTO t(v) VALUES ('a')`]),
    p.write([`INSERT INTO t(v) VALUES ('b')`, `CREATE TABLE t2(id INTEGER PRIMARY KEY)`, `INSERT INTO t(v) VALUES ('a')`], true),
    p.write([`INSERT INTO t(v) VALUES ('c')`, `INSERT INTO t(v) VALUES ('c')`, `INSERT INTO t(v) VALUES ('d')`]),
  ])
  assert.deepEqual(errorsOf(a.results), [])
  assert.equal(errorsOf(b.results).length, 1)
  assert.equal(errorsOf(c.results).length, 1)
  assert.deepEqual(p.query('master', 'SELECT v FROM t ORDER BY v').map((r) => (r as { v: string }).v), ['a', 'c', 'd'])
  assert.deepEqual(p.query('master', `SELECT name FROM sqlite_schema WHERE name = 't2'`), [])
  assert.equal(a.lsn, c.lsn, 'one batch, one entry')
  const [master, replica] = p.checksums()
  assert.equal(replica, master)
  p.close()
})

test('refused SQL is refused: ATTACH, VACUUM, load_extension, unsafe PRAGMA, BEGIN, internal tables', async () => {
  const p = pair()
  for (const sql of [
    `ATTACH DATABASE '/tmp/x.db' AS x`,
    `VACUUM INTO '/tmp/y.db'`,
    `SELECT load_extension('x')`,
    'PRAGMA writable_schema = 1',
    'PRAGMA foreign_keys = OFF',
    'BEGIN',
    'DELETE FROM _tandem_log',
    'CREATE TEMP TABLE tt(id INTEGER PRIMARY KEY)',
  ]) {
    await assert.rejects(p.write([sql]), (e) => isTandemError(e, 'SQL_REFUSED'), sql)
  }
  p.close()
})

test('a conflict while applying is divergence: nothing is overwritten', async () => {
  const p = pair()
  await p.write(['CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', `INSERT INTO t VALUES (1, 'master')`])
  p.sync()
  p.query('replica', `UPDATE t SET v = 'local' WHERE id = 1 RETURNING 1`)
  await p.write([`UPDATE t SET v = 'new' WHERE id = 1`])
  assert.throws(() => p.sync(), (e) => isTandemError(e, 'REPLICA_DIVERGED'))
  assert.deepEqual(p.query('replica', 'SELECT v FROM t'), [{ v: 'local' }])
  assert.equal(p.applier.position.lsn, 1)
  p.close()
})

test("an entry that does not follow the replica's history is refused as divergence, nothing of it applied", async () => {
  const p = pair()
  try {
    await p.write(['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t VALUES (1, 'a')"])
    p.sync()
    assert.equal(p.applier.position.hash, p.log.position().hash, 'the replica holds the master\'s history hash')
    await p.write(["INSERT INTO t VALUES (2, 'b')"])
    const next = p.entries.splice(0)
    // The same entry as another master of the same epoch would have sent it: valid on its own
    // (its checksum verifies, its ops apply), but written after a history that is not this one.
    const forged = createEntry(next[0]!.lsn, next[0]!.epoch, next[0]!.time, next[0]!.ops, new Uint8Array(16).fill(7))
    assert.throws(() => p.applier.applyBatch([forged]), (e) => isTandemError(e, 'REPLICA_DIVERGED'))
    assert.deepEqual(p.query('replica', 'SELECT count(*) AS n FROM t'), [{ n: 1n }])
    p.applier.applyBatch(next)
    assert.deepEqual(p.query('replica', 'SELECT count(*) AS n FROM t'), [{ n: 2n }])
  } finally {
    p.close()
  }
})

test("a replica with an empty log that knows a later epoch (a promotion fenced it) still applies the old epoch's entries from the new master", async () => {
  const p = pair()
  try {
    await p.write(['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t VALUES (1, 'a')"])
    // The replica received nothing before the master was lost; the promotion raised its epoch.
    p.applier.store.raiseEpoch(2)
    const fenced = p.reopen()
    assert.equal(fenced.position.lsn, 0)
    fenced.applyBatch(p.entries.splice(0))
    assert.equal(fenced.position.lsn, 1)
    assert.deepEqual(p.query('replica', 'SELECT v FROM t'), [{ v: 'a' }])
  } finally {
    p.close()
  }
})
