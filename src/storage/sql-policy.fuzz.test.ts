/**
 * Properties of the SQL splitter and the SQL policy (fast-check). Seeded: a failure prints its
 * seed and shrunk counterexample; rerun with that seed to reproduce.
 *
 * The policy property runs SQL built from a small grammar (user and Tandem tables spelled every
 * way, TEMP spellings, triggers, ATTACH, VACUUM, PRAGMAs, transactions, with comments and string
 * literals interleaved) on a writer opened as the master opens it, holding Tandem's real tables,
 * and checks what must never change whatever the SQL: Tandem's tables and their schema, the temp
 * schema, the files on disk; and that Tandem's own writes fire no user trigger.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { TandemError } from '../shared/errors.ts'
// The real schema of Tandem's tables, as the master creates them (a test may look upward).
import { LogStore } from '../replication-log/log-store.ts'
import { ensureJobSchema } from '../jobs/job-schema.ts'
import { openWriter, type GuardedConnection } from './database.ts'
import { splitSql } from './sql-splitter.ts'
import { runClientStatement } from './statement-runner.ts'
import { parametersOf, sqlTokens } from './sql-tokens.ts'

const seed = 160504
const root = mkdtempSync(join(tmpdir(), 'tandem-policy-fuzz-'))
/** Where ATTACH, VACUUM INTO and load_extension point: it must stay empty. */
const outside = join(root, 'outside')
mkdirSync(outside)
after(() => rmSync(root, { recursive: true, force: true }))

test('the splitter takes any text apart without failing, into trimmed pieces of it', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.fullUnicodeString({ maxLength: 100 }),
    // Dense in the characters the splitter cares about.
    fc.array(fc.constantFrom(';', "'", '"', '`', '[', ']', '-', '-', '/', '*', '\n', ' ', 'END', 'CREATE', 'TEMP', 'TRIGGER', 'BEGIN', 'EXPLAIN', 'x', '$'), { maxLength: 60 }).map((a) => a.join('')),
  )
  fc.assert(
    fc.property(text, (sql) => {
      const parts = splitSql(sql)
      assert.ok(parts.length <= sql.split(';').length)
      for (const part of parts) {
        assert.ok(sql.includes(part.sql))
        assert.equal(part.sql, part.sql.trim())
        assert.match(part.keyword, /^[A-Z_][A-Z0-9_$]*$|^$/)
      }
      // The tokenizers behind textRefusal and parameter checks take the same text.
      // (A quoted identifier's text is unescaped, so it need not appear as such in the SQL.)
      for (const token of sqlTokens(sql)) assert.ok(token.text.length <= sql.length)
      parametersOf(sql)
    }),
    { seed, numRuns: 3000 },
  )
})

// ---- A small grammar of statements, user and Tandem tables alike ----

const userTable = fc.constantFrom('t', '"t"', '[t]', '`t`', 'main.t', 'MAIN."t"', 'u')
const tandemTable = fc.constantFrom(
  '_tandem_log', '"_tandem_log"', '[_TANDEM_JOBS]', 'main._tandem_jobs', '`_tandem_tasks`', 'main . /* x */ _tandem_meta',
  '"_Tandem_Epochs"', '_tandem_idempotency', 'sqlite_schema', 'sqlite_temp_master', 'temp.sqlite_master',
)
const table = fc.oneof(userTable, tandemTable)
const literal = fc.constantFrom("'a;b'", "'END;'", "'it''s'", "x'00ff'", '1', 'NULL', "'/*not-a-comment*/'", "'--'", "'_tandem_log'", '?1')
const column = fc.constantFrom('v', 'id', 'lsn', 'ops', 'state', 'key', 'value', 'epoch')
const name = fc.constantFrom('n', '"n2"', '[n3]', '_tandem_x', '"_tandem_log"', 'sqlite_x', 'v1')
/** Every way to say TEMP, and none. */
const temp = fc.constantFrom('', '', 'TEMP ', 'TEMPORARY ', 'temp ')
const schema = fc.constantFrom('', '', 'main.', 'temp.', '"temp".', 'TEMP . ', '[temp].', 'main . ')

const dml = fc.oneof(
  fc.tuple(table, literal, literal).map(([t, a, b]) => `INSERT INTO ${t} VALUES (${a}, ${b})`),
  fc.tuple(table, column, literal).map(([t, c, a]) => `INSERT OR REPLACE INTO ${t} (${c}) VALUES (${a})`),
  fc.tuple(table, column, literal).map(([t, c, a]) => `UPDATE ${t} SET ${c} = ${a} WHERE 1`),
  fc.tuple(table, column).map(([t, c]) => `DELETE FROM ${t} WHERE ${c} IS NOT NULL`),
  table.map((t) => `WITH c(x) AS (SELECT 1) DELETE FROM ${t} WHERE 1 IN (SELECT x FROM c)`),
  fc.tuple(table, table).map(([a, b]) => `INSERT INTO ${a} SELECT * FROM ${b}`),
  fc.tuple(table, literal).map(([t, a]) => `INSERT INTO ${t} VALUES (${a}, ${a}) RETURNING *`),
  fc.tuple(table, column).map(([t, c]) => `SELECT ${c}, count(*) FROM ${t}`),
  table.map((t) => `UPDATE t SET v = (SELECT count(*) FROM ${t})`),
)

const ddl = fc.oneof(
  fc.tuple(temp, schema, name).map(([tp, s, n]) => `CREATE ${tp}TABLE ${s}${n} (id INTEGER PRIMARY KEY, v)`),
  fc.tuple(temp, schema, name, table).map(([tp, s, n, t]) => `CREATE ${tp}TABLE IF NOT EXISTS ${s}${n} AS SELECT * FROM ${t}`),
  fc.tuple(temp, schema, name, table).map(([tp, s, n, t]) => `CREATE ${tp}VIEW ${s}${n} AS SELECT * FROM ${t}`),
  fc.tuple(schema, name, table, column).map(([s, n, t, c]) => `CREATE INDEX ${s}${n} ON ${t} (${c})`),
  fc.tuple(schema, name, table, column).map(([s, n, t, c]) => `CREATE UNIQUE INDEX IF NOT EXISTS ${s}${n} ON ${t} (${c}) WHERE ${c} > 0`),
  fc
    .tuple(temp, schema, name, fc.constantFrom('BEFORE', 'AFTER', 'INSTEAD OF'), fc.constantFrom('INSERT', 'UPDATE', 'DELETE', 'UPDATE OF v'), table, fc.array(dml, { minLength: 1, maxLength: 2 }))
    .map(([tp, s, n, when, event, t, body]) => `CREATE ${tp}TRIGGER ${s}${n} ${when} ${event} ON ${t} BEGIN ${body.join('; ')}; END`),
  fc.tuple(fc.constantFrom('TABLE', 'VIEW', 'INDEX', 'TRIGGER'), schema, fc.oneof(name, table)).map(([kind, s, n]) => `DROP ${kind} IF EXISTS ${s}${n}`),
  fc.tuple(table, name).map(([t, n]) => `ALTER TABLE ${t} RENAME TO ${n}`),
  fc.tuple(table, column).map(([t, c]) => `ALTER TABLE ${t} ADD COLUMN extra_${c} REFERENCES _tandem_jobs`),
  fc.tuple(table, column).map(([t, c]) => `ALTER TABLE ${t} DROP COLUMN ${c}`),
  fc.tuple(schema, name).map(([s, n]) => `CREATE VIRTUAL TABLE ${s}${n} USING fts5(a)`),
)

const escape = fc.constantFrom(
  `ATTACH '${outside}/a.db' AS a`,
  `ATTACH 'file:${outside}/b.db?mode=rwc' AS b`,
  `ATTACH 'fuzz-relative.db' AS r`,
  `ATTACH ':memory:' AS m`,
  'DETACH a',
  `VACUUM INTO '${outside}/v.db'`,
  'VACUUM',
  `SELECT load_extension('${outside}/x')`,
  'BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT s', 'RELEASE s',
  'REINDEX', 'ANALYZE', 'ANALYZE _tandem_log',
)
const pragma = fc
  .tuple(
    fc.constantFrom('writable_schema', 'journal_mode', 'user_version', 'temp_store', 'foreign_keys', 'table_info', 'schema_version', 'query_only', 'recursive_triggers', 'temp.user_version', 'main.journal_mode', 'integrity_check', 'trusted_schema', 'defer_foreign_keys'),
    fc.constantFrom('', ' = 1', ' = OFF', '(_tandem_log)', ' = DELETE', ' = MEMORY', "('t')"),
  )
  .map(([p, v]) => `PRAGMA ${p}${v}`)

const statement = fc.oneof({ weight: 3, arbitrary: dml }, { weight: 3, arbitrary: ddl }, { weight: 1, arbitrary: escape }, { weight: 1, arbitrary: pragma })
const noise = fc.constantFrom(' ', ' ', ' ', ' /* ; END; */ ', ' -- ; END;\n', '\n\t', " /* 'x */ ")

/** Statements joined by `;`, with comments where the grammar has spaces. */
const sqlText = fc.tuple(fc.array(statement, { minLength: 1, maxLength: 3 }), fc.array(noise, { minLength: 64, maxLength: 64 })).map(([statements, noises]) => {
  let at = 0
  const spaced = statements.map((s) => s.split(' ').reduce((text, word) => (text === '' ? word : `${text}${noises[at++ % noises.length]!}${word}`), ''))
  return spaced.join(`;${noises[at % noises.length]!}`)
})

// ---- The writer under test ----

let databaseCount = 0

function masterWriter(): { guarded: GuardedConnection; dir: string } {
  const dir = join(root, `db${databaseCount++}`)
  mkdirSync(dir)
  const guarded = openWriter(join(dir, 'data.db'), 'off')
  const { connection, policy } = guarded
  LogStore.ensureSchema(connection, (fn) => policy.internally(fn))
  policy.internally(() => {
    ensureJobSchema(connection)
    connection.exec(`
      INSERT INTO _tandem_log VALUES (1, 1, 0, 0, x'01', NULL);
      INSERT INTO _tandem_jobs VALUES ('j', 'h', 'queued', '{}', 1, 1, NULL, 'r', 0, NULL);
      INSERT INTO _tandem_tasks (job_id, idx, state, input, run_after) VALUES ('j', 0, 'queued', '1', 0);
      INSERT INTO _tandem_idempotency VALUES ('k', 'h', 1, '[]', 0);`)
  })
  connection.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v); CREATE TABLE u (id INTEGER PRIMARY KEY AUTOINCREMENT, v);
    INSERT INTO t VALUES (1, 'a'); INSERT INTO u (v) VALUES ('b');`)
  return { guarded, dir }
}

function all(guarded: GuardedConnection, sql: string): unknown[] {
  return guarded.policy.internally(() => guarded.connection.prepare(sql).all().map((row) => ({ ...(row as object) })))
}

/** Tandem's tables, every schema object on them or named like them, and the temp schema. */
function tandemState(guarded: GuardedConnection): string {
  const tables = all(guarded, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '\\_tandem\\_%' ESCAPE '\\' ORDER BY name`) as { name: string }[]
  return JSON.stringify([
    all(guarded, `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name LIKE '%tandem%' OR tbl_name LIKE '%tandem%' OR sql LIKE '%tandem%' ORDER BY name`),
    tables.map(({ name: n }) => [n, all(guarded, `SELECT * FROM "${n}"`)]),
  ])
}

/** Every user table's rows (what a trigger fired by Tandem's writes would change). */
function userState(guarded: GuardedConnection): string {
  const tables = all(guarded, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_tandem\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name`) as { name: string }[]
  return JSON.stringify(tables.map(({ name: n }) => [n, all(guarded, `SELECT * FROM "${n.replaceAll('"', '""')}"`)]))
}

function run(guarded: GuardedConnection, sql: string): void {
  try {
    // `?1` takes a value when the text is one statement (parameters go with one statement only).
    runClientStatement(guarded, sql.includes('?1') && splitSql(sql).length === 1 ? { sql, params: [1] } : { sql })
  } catch (error) {
    // Refusals and bad requests are answers; anything else is a bug in the runner or policy.
    if (!(error instanceof TandemError)) throw error
  }
  // A BEGIN the policy let through would leave a transaction open.
  assert.equal(guarded.connection.isTransaction, false, 'no transaction left open by client SQL')
}

test('no statement, accepted or refused, changes Tandem tables, the temp schema or files outside the data', () => {
  const cwdFiles = readdirSync('.').sort()
  fc.assert(
    fc.property(fc.array(sqlText, { minLength: 1, maxLength: 4 }), (texts) => {
      const { guarded, dir } = masterWriter()
      try {
        const before = tandemState(guarded)
        for (const sql of texts) {
          run(guarded, sql)
          assert.equal(tandemState(guarded), before, `Tandem's tables changed by: ${sql}`)
          assert.deepEqual(all(guarded, 'SELECT type, name FROM temp.sqlite_master'), [], `temp schema changed by: ${sql}`)
          assert.deepEqual(all(guarded, 'PRAGMA database_list').map((d) => (d as { name: string }).name).filter((n) => n !== 'temp'), ['main'], `database attached by: ${sql}`)
        }
        // Tandem's own writes fire no user trigger: the user tables stay as they are.
        const users = userState(guarded)
        guarded.policy.internally(() =>
          guarded.connection.exec(`
            INSERT INTO _tandem_log VALUES (2, 1, 0, 0, x'02', NULL); UPDATE _tandem_jobs SET state = 'running';
            DELETE FROM _tandem_tasks; DELETE FROM _tandem_log WHERE lsn = 1; UPDATE _tandem_meta SET value = 2;`),
        )
        assert.equal(userState(guarded), users, 'a Tandem write changed user tables')
      } finally {
        guarded.connection.close()
      }
      assert.deepEqual(readdirSync(outside), [], 'files created outside the data directory')
      assert.ok(readdirSync(dir).every((f) => /^data\.db(-wal|-shm)?$/.test(f)), `unexpected files: ${readdirSync(dir).join(', ')}`)
      assert.deepEqual(readdirSync('.').sort(), cwdFiles, 'files created in the working directory')
    }),
    { seed, numRuns: 250 },
  )
})

test('a schema-qualified Tandem table is an identifier, not part of a number (regression)', () => {
  assert.deepEqual([...sqlTokens('SELECT * FROM main._tandem_log, t.v, .5, 1.5e3')].map((token) => token.text), ['SELECT', 'FROM', 'main', '_tandem_log', 't', 'v'])
  const { guarded } = masterWriter()
  for (const sql of [
    'CREATE VIEW n AS SELECT * FROM main._tandem_jobs',
    'CREATE TRIGGER x AFTER INSERT ON t BEGIN DELETE FROM main._tandem_log; END',
    'CREATE TRIGGER x AFTER INSERT ON t BEGIN UPDATE main . _tandem_jobs SET state = 1; END',
  ]) {
    assert.throws(() => runClientStatement(guarded, { sql }), (e) => e instanceof TandemError && e.code === 'SQL_REFUSED', sql)
  }
  assert.deepEqual(all(guarded, `SELECT name FROM sqlite_schema WHERE type IN ('view', 'trigger')`), [])
  guarded.connection.close()
})
