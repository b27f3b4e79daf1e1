import { test } from 'node:test'
import assert from 'node:assert/strict'
import { splitSql } from './sql-splitter.ts'

test('splits on semicolons outside strings, identifiers and comments', () => {
  const parts = splitSql(`INSERT INTO t VALUES ('a;b'); SELECT "x;y" FROM [z;] -- c;\n; /* ; */ SELECT 1`)
  assert.deepEqual(parts.map((p) => p.sql), [`INSERT INTO t VALUES ('a;b')`, `SELECT "x;y" FROM [z;] -- c;`, `/* ; */ SELECT 1`])
  assert.deepEqual(parts.map((p) => p.keyword), ['INSERT', 'SELECT', 'SELECT'])
})

test('a trigger body keeps its inner semicolons until END', () => {
  const sql = `CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO a VALUES (1); DELETE FROM b; END; SELECT 2`
  const parts = splitSql(sql)
  assert.equal(parts.length, 2)
  assert.ok(parts[0]!.sql.endsWith('END'))
  assert.equal(parts[1]!.sql, 'SELECT 2')
})

test('empty statements and pure comments are dropped', () => {
  assert.deepEqual(splitSql(' ;; -- nothing\n /* x */ ;'), [])
})

test('escaped quotes stay inside the string', () => {
  assert.deepEqual(splitSql(`SELECT 'it''s; fine'; SELECT 1`).map((p) => p.sql), [`SELECT 'it''s; fine'`, 'SELECT 1'])
})
