import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openWriter } from './database.ts'
import { parametersOf } from './sql-tokens.ts'
import type { SqlParams } from './sqlite.ts'
import { runClientStatement, type StatementResult } from './statement-runner.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-params-'))
const guarded = openWriter(join(dir, 'db'), 'off')
guarded.connection.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)')
after(() => {
  guarded.connection.close()
  rmSync(dir, { recursive: true, force: true })
})

function run(sql: string, params?: SqlParams): StatementResult {
  return runClientStatement(guarded, params === undefined ? { sql } : { sql, params })
}

function assertError(result: StatementResult, pattern: RegExp): void {
  assert.equal(result.kind, 'error', JSON.stringify(result))
  if (result.kind === 'error') assert.match(result.error, pattern)
}

test('a missing positional parameter is an error, not NULL', () => {
  assertError(run('SELECT ?, ?', [1]), /takes 2 parameters but 1 was given/)
  assertError(run('SELECT ?'), /takes 1 parameter but none were given/)
  assertError(run('INSERT INTO t VALUES (?, ?, ?)', [1, 2]), /takes 3 parameters/)
  assert.equal(guarded.connection.prepare('SELECT count(*) AS n FROM t').all().length, 1)
  assert.equal((guarded.connection.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 0, 'nothing was inserted')
})

test('too many positional parameters is an error', () => {
  assertError(run('SELECT ?', [1, 2]), /takes 1 parameter but 2 were given/)
  assertError(run('SELECT 1', [1]), /takes 0 parameters but 1 was given/)
})

test('a missing named parameter is an error; extra named values are ignored, as rqlite ignores them', () => {
  assertError(run('SELECT :a, :b', { a: 1 }), /named parameter :b/)
  assertError(run('SELECT @a, $b', { a: 1 }), /named parameter \$b/)
  assertError(run('SELECT :a, ?', { a: 1 }), /positional parameters/)
  const ok = run('SELECT :a, @b, $c', { a: 1, '@b': 2, c: 3, unused: 4 })
  assert.equal(ok.kind, 'rows')
  if (ok.kind === 'rows') assert.deepEqual(ok.values, [[1, 2, 3]])
})

test('parameters that fit run as before', () => {
  const rows = run('SELECT ?, ?2, ?1', [1, 2])
  assert.equal(rows.kind, 'rows')
  if (rows.kind === 'rows') assert.deepEqual(rows.values, [[1, 2, 1]])
  assert.equal(run('SELECT :a, :a', { a: 7 }).kind, 'rows', 'a named parameter used twice is one parameter')
  assertError(run('SELECT :a', [7]), /named parameters \(:a\) but a list/)
  assert.equal(run(`SELECT '?:a' AS "?:x", [?] FROM (SELECT 1 AS [?]) -- ?\n/* :b */`).kind, 'rows', 'no parameters in strings, identifiers or comments')
  assert.equal(run('INSERT INTO t VALUES (?, ?, ?)', [1, 'x', null]).kind, 'exec')
})

test('parameters are numbered as SQLite numbers them', () => {
  assert.deepEqual(parametersOf('SELECT ?, ?5, ?, :a, :a, @a').count, 8)
  assert.deepEqual([...parametersOf('SELECT $x::y(z), $w').names], ['$x::y(z)', '$w'])
  assert.equal(parametersOf('SELECT a$b, 1e5, x\'00\'').count, 0)
})
