import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isTandemError } from '../shared/errors.ts'
import { openReader, openWriter, type GuardedConnection } from './database.ts'
import { alwaysAllowed, SqlPolicy } from './sql-policy.ts'
import { auth, type AuthorizerCallback, type Connection } from './sqlite.ts'
import { runClientStatement } from './statement-runner.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-policy-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** A writer with one user table and one Tandem table, as a master has them. */
function writer(): GuardedConnection {
  const guarded = openWriter(join(dir, `${Math.random().toString(36).slice(2)}.db`), 'off')
  guarded.policy.internally(() => guarded.connection.exec('CREATE TABLE _tandem_log (lsn INTEGER PRIMARY KEY, ops BLOB); CREATE TABLE _tandem_jobs (id INTEGER PRIMARY KEY, x)'))
  guarded.connection.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v)')
  return guarded
}

/** Every schema object of both databases, and the user table's rows: what a refusal must leave as it was. */
function state(guarded: GuardedConnection): string {
  return guarded.policy.internally(() => {
    const all = (sql: string) => guarded.connection.prepare(sql).all()
    return JSON.stringify([all('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name'), all('SELECT type, name FROM temp.sqlite_schema'), all('SELECT * FROM t'), all('SELECT * FROM _tandem_log')])
  })
}

function assertRefused(guarded: GuardedConnection, sql: string): void {
  const before = state(guarded)
  assert.throws(() => runClientStatement(guarded, { sql }), (e) => isTandemError(e, 'SQL_REFUSED'), sql)
  assert.equal(state(guarded), before, `nothing applied: ${sql}`)
}

const onInternalTables = [
  'CREATE TRIGGER x AFTER INSERT ON _tandem_log BEGIN SELECT 1; END',
  'CREATE TRIGGER x AFTER INSERT ON main."_tandem_log" BEGIN DELETE FROM t; END',
  'CREATE TRIGGER x AFTER INSERT ON [_TANDEM_LOG] BEGIN SELECT 1; END',
  'CREATE TRIGGER x BEFORE INSERT ON `_tandem_jobs` BEGIN SELECT RAISE(ABORT, \'no\'); END',
  'CREATE TRIGGER x AFTER UPDATE ON main . /* c */ _tandem_jobs BEGIN DELETE FROM t; END',
  'create trigger x after delete on "_Tandem_Jobs" begin select 1; end',
  'CREATE INDEX i ON _tandem_log (ops)',
  'CREATE UNIQUE INDEX i ON main."_tandem_jobs" (x)',
  'CREATE INDEX i ON [_tandem_log] (lsn) WHERE lsn > 0',
]

test('no trigger or index may be created on a _tandem_* table, however the table is spelled', () => {
  const guarded = writer()
  for (const sql of onInternalTables) assertRefused(guarded, sql)
  guarded.connection.close()
})

const temporary = [
  'CREATE TEMP TABLE x (id INTEGER PRIMARY KEY)',
  'CREATE TEMPORARY TABLE x (id INTEGER PRIMARY KEY)',
  'CREATE TABLE temp.x (id INTEGER PRIMARY KEY)',
  'CREATE TABLE "temp".x (id INTEGER PRIMARY KEY)',
  'CREATE TABLE TEMP . x (id INTEGER PRIMARY KEY)',
  'CREATE TABLE temp.x AS SELECT * FROM t',
  'CREATE TEMP VIEW v AS SELECT 1',
  'CREATE TEMPORARY VIEW v AS SELECT * FROM t',
  'CREATE VIEW temp.v AS SELECT 1',
  'CREATE TEMP TRIGGER x AFTER INSERT ON t BEGIN UPDATE t SET v = 1; END',
  'CREATE TEMPORARY TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END',
  'CREATE TRIGGER temp.x AFTER INSERT ON t BEGIN UPDATE t SET v = v + 1000; END',
  'CREATE TRIGGER "temp"."x" AFTER INSERT ON main.t BEGIN SELECT 1; END',
  'CREATE VIRTUAL TABLE temp.f USING fts5(a)',
  'CREATE TEMP TABLE x (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (99, 1)',
]

test('nothing temporary may be created, through any spelling', () => {
  const guarded = writer()
  for (const sql of temporary) assertRefused(guarded, sql)
  guarded.connection.close()
})

test('a read connection refuses temporary objects too', () => {
  const path = join(dir, 'reader.db')
  const w = openWriter(path, 'off')
  w.connection.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
  const reader = openReader(path)
  for (const sql of ['CREATE TEMP TABLE x (a)', 'CREATE TABLE temp.x (a)', 'CREATE TEMP VIEW v AS SELECT 1']) {
    assert.throws(() => runClientStatement(reader, { sql }), (e) => isTandemError(e, 'SQL_REFUSED'), sql)
  }
  assert.deepEqual(reader.connection.prepare('SELECT name FROM temp.sqlite_schema').all(), [])
  reader.connection.close()
  w.connection.close()
})

test('a trigger on a user table may not write, nor name, Tandem tables', () => {
  const guarded = writer()
  for (const sql of [
    'CREATE TRIGGER x AFTER INSERT ON t BEGIN INSERT INTO _tandem_log (ops) VALUES (NULL); END',
    'CREATE TRIGGER x AFTER INSERT ON t BEGIN DELETE FROM main."_tandem_log"; END',
    'CREATE TRIGGER x AFTER INSERT ON t WHEN (SELECT count(*) FROM [_tandem_jobs]) > 0 BEGIN SELECT 1; END',
    'CREATE TRIGGER x AFTER INSERT ON t BEGIN UPDATE _TANDEM_JOBS SET x = 1; END',
    'CREATE VIEW v AS SELECT * FROM _tandem_log',
    'ALTER TABLE t RENAME TO _tandem_mine',
    // A foreign key into a Tandem table would let Tandem's deletes cascade into user rows (and
    // fire their triggers), or fail Tandem's own deletes.
    'CREATE TABLE u (id INTEGER PRIMARY KEY, job REFERENCES _tandem_jobs (id) ON DELETE CASCADE)',
    'ALTER TABLE t ADD COLUMN job REFERENCES "_tandem_jobs"',
  ]) {
    assertRefused(guarded, sql)
  }
  guarded.connection.close()
})

test('a trigger that reaches a Tandem table anyway is refused when something fires it', () => {
  // Made past the policy, as a database from before this rule might hold one.
  const guarded = writer()
  guarded.policy.internally(() => guarded.connection.exec('CREATE TRIGGER old AFTER INSERT ON t BEGIN DELETE FROM _tandem_log; END'))
  assertRefused(guarded, 'INSERT INTO t VALUES (1, 1)')
  // And it can be dropped: that is the cure.
  runClientStatement(guarded, { sql: 'DROP TRIGGER old' })
  runClientStatement(guarded, { sql: 'INSERT INTO t VALUES (1, 1)' })
  guarded.connection.close()
})

test('ordinary schema changes and triggers on user tables still run', () => {
  const guarded = writer()
  for (const sql of [
    'CREATE TABLE u (id INTEGER PRIMARY KEY, t_id, note)',
    'CREATE INDEX u_note ON u (note)',
    'CREATE TRIGGER u_audit AFTER INSERT ON u BEGIN UPDATE t SET v = NEW.note WHERE id = NEW.t_id; END',
    'CREATE VIEW tv AS SELECT * FROM t',
    'INSERT INTO t VALUES (1, NULL)',
    `INSERT INTO u VALUES (1, 1, 'tandem_note _tandem_ in a string')`,
    // ALTER TABLE updates sqlite_temp_master behind the scenes: not a temporary object.
    'ALTER TABLE u RENAME COLUMN note TO memo',
    'ALTER TABLE u RENAME TO u2',
    'ALTER TABLE u2 ADD COLUMN extra',
    'ALTER TABLE u2 DROP COLUMN extra',
  ]) {
    const result = runClientStatement(guarded, { sql })
    assert.notEqual(result.kind, 'error', sql)
  }
  assert.deepEqual(guarded.connection.prepare('SELECT v FROM t').all().map((row) => ({ ...(row as object) })), [{ v: 'tandem_note _tandem_ in a string' }])
  guarded.connection.close()
})

test('the codes the engine answers without the policy are ones the policy allows whatever their arguments', () => {
  let installed: { callback: AuthorizerCallback | null; allowed: readonly number[] | undefined } | undefined
  const capture = { setAuthorizer: (callback: AuthorizerCallback | null, allowed?: readonly number[]) => (installed = { callback, allowed }) } as unknown as Connection
  const policy = new SqlPolicy()
  policy.install(capture)
  assert.deepEqual(installed?.allowed, alwaysAllowed)
  const names = [null, '', 't', '_tandem_log', '_TANDEM_jobs', 'sqlite_schema', 'sqlite_temp_master']
  for (const code of alwaysAllowed) {
    for (const arg1 of names) {
      for (const arg2 of names) {
        for (const database of [null, 'main', 'temp']) {
          for (const trigger of [null, 'tr']) assert.equal(installed?.callback?.(code, arg1, arg2, database, trigger), auth.OK, JSON.stringify([code, arg1, arg2, database, trigger]))
          policy.internally(() => assert.equal(installed?.callback?.(code, arg1, arg2, database, null), auth.OK))
        }
      }
    }
  }
})
