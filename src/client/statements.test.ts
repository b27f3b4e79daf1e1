import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemClientError } from './client-errors.ts'
import { decodeRows, decodeStatementResult, makeRows } from './results.ts'
import { encodeStatements } from './statements.ts'

test('statements encode as rqlite bodies: text, positional and named parameters, BLOBs as hex', () => {
  assert.deepEqual(
    encodeStatements([
      'SELECT 1',
      { sql: 'INSERT INTO t VALUES (?, ?, ?, ?)', params: [1, 'a', null, true] },
      { sql: 'INSERT INTO t VALUES (:a, :b)', params: { a: 2n ** 60n, b: new Uint8Array([0, 15, 255]) } },
      { sql: 'DELETE FROM t' },
    ]),
    ['SELECT 1', ['INSERT INTO t VALUES (?, ?, ?, ?)', 1, 'a', null, true], ['INSERT INTO t VALUES (:a, :b)', { a: 2n ** 60n, b: "x'000fff'" }], 'DELETE FROM t'],
  )
})

test('a parameter that cannot be sent fails with BAD_REQUEST before anything is sent', () => {
  for (const bad of [undefined, Number.NaN, Infinity, new Date(0), { nested: 1 }, [1]]) {
    assert.throws(
      () => encodeStatements([{ sql: 'SELECT ?', params: [bad as never] }]),
      (error) => isTandemClientError(error, 'BAD_REQUEST') && /parameter 1 of statement 0/.test(error.message),
    )
  }
})

test('rows become objects in column order, BLOB byte arrays become Uint8Array', () => {
  const { rows, columns, types } = decodeRows({ columns: ['id', 'b', 'n'], types: ['integer', 'blob', ''], values: [[1, [1, 2], null]] }, 'http://n')
  assert.deepEqual(rows, [{ id: 1, b: new Uint8Array([1, 2]), n: null }])
  assert.deepEqual(columns, ['id', 'b', 'n'])
  assert.deepEqual(types, ['integer', 'blob', ''])
  assert.deepEqual(decodeRows({ columns: ['x'], types: ['integer'] }, 'http://n').rows, [], 'no values: no rows')
})

test('query metadata rides on the rows without changing how they compare', () => {
  const rows = makeRows<{ id: number }>([{ id: 1 }], { columns: ['id'], types: ['integer'], lsn: 7, node: 'http://n' })
  assert.deepEqual(rows, [{ id: 1 }])
  assert.equal(JSON.stringify(rows), '[{"id":1}]')
  assert.equal(rows.lsn, 7)
  assert.equal(rows.node, 'http://n')
})

test('statement results: exec, rows, failure, and a malformed row is BAD_RESPONSE', () => {
  assert.deepEqual(decodeStatementResult({}, 'http://n'), { rowsAffected: 0, lastInsertId: 0 })
  assert.deepEqual(decodeStatementResult({ last_insert_id: 9007199254740993n, rows_affected: 1 }, 'http://n'), { rowsAffected: 1, lastInsertId: 9007199254740993n })
  assert.deepEqual(decodeStatementResult({ error: 'no such table: t' }, 'http://n'), { error: 'no such table: t' })
  assert.throws(() => decodeRows({ columns: ['a', 'b'], values: [[1]] }, 'http://n'), (error) => isTandemClientError(error, 'BAD_RESPONSE'))
})
