import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bindable as bindableFor, castSql as castFor, sqlReal, uncastName } from './exact-values.ts'
import { openConnection, type SqlParam, type SqlParams } from './sqlite.ts'

test('on the published binding, castSql wraps exactly the parameters whose values it would make INTEGERs, numbered as SQLite numbers them', () => {
  const castSql = (sql: string, params: SqlParams) => castFor(sql, params, false)
  assert.equal(castSql('SELECT ?, ?', [1, 2.5]), 'SELECT ?, ?', 'nothing to cast: the text as written')
  assert.equal(castSql('SELECT ?, ?', [1e-20, 2]), 'SELECT (? * 1.0), ?')
  assert.equal(castSql('SELECT ?2, ?, ?1', [sqlReal(1), 3, 4]), 'SELECT ?2, ?, (?1 * 1.0)', '? after ?2 is ?3')
  assert.equal(castSql("SELECT '?', ? -- ?\n, /* ? */ ?", [sqlReal(-0), -1e-300]), "SELECT '?', (? * 1.0) -- ?\n, /* ? */ ?", 'strings and comments are not parameters; -1e-300 binds as a REAL already')
  assert.equal(castSql('SELECT :a, @b, :a, $c', { a: sqlReal(2), b: 1, c: 5e-324 }), 'SELECT (:a * 1.0), @b, (:a * 1.0), ($c * 1.0)')
  assert.equal(castSql('SELECT :a', { ':a': 1e-20 }), 'SELECT (:a * 1.0)', 'a name given with its prefix')
  assert.equal(castSql('SELECT ?', [sqlReal(3e9)]), 'SELECT ?', 'past 32 bits the binding binds a double itself')
  assert.equal(castSql('SELECT ?, ?', ['a\u0000b', 'ab']), "SELECT (? || ''), ?", 'text holding a NUL is bound as its bytes')
})

test('on the published binding, bindable: integers past 32 bits become bigints, REALs it would round become their exact text, the rest stay', () => {
  const bindable = (value: SqlParam) => bindableFor(value, false)
  assert.equal(bindable(3e9), 3_000_000_000n)
  assert.equal(bindable(-(2 ** 31) - 1), -(2n ** 31n) - 1n)
  assert.equal(bindable(2 ** 31 - 1), 2 ** 31 - 1)
  assert.equal(bindable(2 ** 60), 2 ** 60, 'an integral number past 2^53 is not known exactly: left to bind as a REAL')
  assert.equal(bindable(1e-20), '1e-20')
  assert.equal(bindable(sqlReal(-0)), '-0.0')
  assert.equal(bindable(sqlReal(1)), '1')
  assert.equal(bindable(sqlReal(3e9)), 3e9)
  assert.equal(bindable(0.5), 0.5)
  assert.equal(bindable('1e-20'), '1e-20')
  assert.equal(bindable(null), null)
  assert.deepEqual(bindable('a\u0000b'), Buffer.from([0x61, 0, 0x62]))
})

test("on Tandem's own SQLite nothing is cast or converted, and every value is stored as given", () => {
  const values: SqlParam[] = [1e-20, 5e-324, -0, sqlReal(1), sqlReal(-0), sqlReal(3e9), 3e9, 2 ** 53, 2 ** 53 - 1, 9007199254740993n, 'a\u0000b', 0.5]
  for (const value of values) assert.equal(bindableFor(value, true), value)
  assert.equal(castFor('SELECT ?, ?', [1e-20, 'a\u0000b'], true), 'SELECT ?, ?')
  const db = openConnection(':memory:')
  try {
    const select = db.prepare('SELECT ? AS v, typeof(?1) AS t')
    select.setReadBigInts(true)
    const answers = values.map((value) => select.get(bindableFor(value, true)) as { v: unknown; t: string })
    assert.deepEqual(answers.map((a) => a.t), ['real', 'real', 'real', 'real', 'real', 'real', 'integer', 'real', 'integer', 'integer', 'text', 'real'])
    assert.deepEqual(answers.map((a) => a.v), [1e-20, 5e-324, -0, 1, -0, 3e9, 3_000_000_000n, 2 ** 53, BigInt(2 ** 53 - 1), 9007199254740993n, 'a\u0000b', 0.5])
  } finally {
    db.close()
  }
})

test('uncastName gives back the column name as written', () => {
  assert.equal(uncastName('(? * 1.0)'), '?')
  assert.equal(uncastName('(?2 * 1.0) + (:a * 1.0)'), '?2 + :a')
  assert.equal(uncastName('x'), 'x')
  assert.equal(uncastName("(:t || '')"), ':t')
})
