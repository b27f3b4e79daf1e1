import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bindable, castSql, sqlReal, uncastName } from './exact-values.ts'

test('castSql wraps exactly the parameters whose values the binding would make INTEGERs, numbered as SQLite numbers them', () => {
  assert.equal(castSql('SELECT ?, ?', [1, 2.5]), 'SELECT ?, ?', 'nothing to cast: the text as written')
  assert.equal(castSql('SELECT ?, ?', [1e-20, 2]), 'SELECT (? * 1.0), ?')
  assert.equal(castSql('SELECT ?2, ?, ?1', [sqlReal(1), 3, 4]), 'SELECT ?2, ?, (?1 * 1.0)', '? after ?2 is ?3')
  assert.equal(castSql("SELECT '?', ? -- ?\n, /* ? */ ?", [sqlReal(-0), -1e-300]), "SELECT '?', (? * 1.0) -- ?\n, /* ? */ ?", 'strings and comments are not parameters; -1e-300 binds as a REAL already')
  assert.equal(castSql('SELECT :a, @b, :a, $c', { a: sqlReal(2), b: 1, c: 5e-324 }), 'SELECT (:a * 1.0), @b, (:a * 1.0), ($c * 1.0)')
  assert.equal(castSql('SELECT :a', { ':a': 1e-20 }), 'SELECT (:a * 1.0)', 'a name given with its prefix')
  assert.equal(castSql('SELECT ?', [sqlReal(3e9)]), 'SELECT ?', 'past 32 bits the binding binds a double itself')
  assert.equal(castSql('SELECT ?, ?', ['a\u0000b', 'ab']), "SELECT (? || ''), ?", 'text holding a NUL is bound as its bytes')
})

test('bindable: integers past 32 bits become bigints, REALs the binding would round become their exact text, the rest stay', () => {
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

test('uncastName gives back the column name as written', () => {
  assert.equal(uncastName('(? * 1.0)'), '?')
  assert.equal(uncastName('(?2 * 1.0) + (:a * 1.0)'), '?2 + :a')
  assert.equal(uncastName('x'), 'x')
  assert.equal(uncastName("(:t || '')"), ':t')
})
