import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { RowsResult, StatementResult } from '../storage/index.ts'
import { formatResult, type FormatOptions } from './rqlite-format.ts'

const plain: FormatOptions = { associative: false, timings: false, blobArray: false }
const associative: FormatOptions = { associative: true, timings: false, blobArray: false }

/** One column of rows, as the storage layer gives them. */
function column(type: string, values: RowsResult['values'][number][number][], firstRowClasses?: string[]): StatementResult {
  const result: StatementResult = { kind: 'rows', columns: ['c'], types: [type], values: values.map((value) => [value]) }
  return firstRowClasses === undefined ? result : { ...result, firstRowClasses }
}

// Expectations measured against rqlited 8.26.8 with the same values in the same declared types.

test('an INTEGER in a BOOLEAN column is true when it is above zero; REAL, TEXT, BLOB and NULL stay', () => {
  const result = column('boolean', [1, 2, 0, -1, 9223372036854775807n, -9223372036854775808n, 1.5, 0.5, 1e20, -1e20, 'true', Uint8Array.of(1), null])
  assert.deepEqual(formatResult(result, plain), {
    columns: ['c'],
    types: ['boolean'],
    values: [[true], [true], [false], [false], [true], [false], [1.5], [0.5], [1e20], [-1e20], ['true'], ['AQ=='], [null]],
  })
})

test('an integral REAL in the first row stays a number where its storage class says REAL', () => {
  // `SELECT b FROM t UNION ALL SELECT 1.0`: the REAL takes the BOOLEAN column's declared type.
  assert.deepEqual(formatResult(column('boolean', [1, 1], ['real']), plain).values, [[1], [true]])
  assert.deepEqual(formatResult(column('datetime', [1700000000, 1700000000], ['real']), plain).values, [[1700000000], ['2023-11-14T22:13:20Z']])
  assert.deepEqual(formatResult(column('boolean', [1], ['integer']), plain).values, [[true]])
})

test('an INTEGER in a DATE, DATETIME or TIMESTAMP column is a UTC time, seconds or past ±1e12 milliseconds', () => {
  for (const type of ['date', 'datetime', 'timestamp']) {
    const result = column(type, [1700000000, 1700000000123, -86400, 0, -1000000000001, 9223372036854775807n])
    assert.deepEqual(formatResult(result, plain), {
      columns: ['c'],
      types: [type],
      values: [
        ['2023-11-14T22:13:20Z'],
        ['2023-11-14T22:13:20.123Z'],
        ['1969-12-31T00:00:00Z'],
        ['1970-01-01T00:00:00Z'],
        ['1938-04-24T22:13:19.999Z'],
        ['1969-12-31T23:59:59.999Z'],
      ],
    })
  }
})

test('TEXT in a time column is parsed by the driver\'s layouts, and what none parses is the zero time', () => {
  const result = column('datetime', ['2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05.678', '2024-01-02 03:04', '2024-01-02 03:04:05+02:00', 'not a date', ''])
  assert.deepEqual(formatResult(result, plain).values, [
    ['2024-01-02T00:00:00Z'],
    ['2024-01-02T03:04:05Z'],
    ['2024-01-02T03:04:05.678Z'],
    ['2024-01-02T03:04:00Z'],
    ['2024-01-02T03:04:05+02:00'],
    ['0001-01-01T00:00:00Z'],
    ['0001-01-01T00:00:00Z'],
  ])
})

test('REAL, BLOB and NULL in a time column stay as they are', () => {
  const result = column('datetime', [1.5, 1e20, Uint8Array.of(0), null])
  assert.deepEqual(formatResult(result, plain).values, [[1.5], [1e20], ['AA=='], [null]])
  assert.deepEqual(formatResult(result, { ...plain, blobArray: true }).values, [[1.5], [1e20], [[0]], [null]])
})

test('only the exact declared types convert', () => {
  for (const type of ['bool', 'integer', 'timestamp with time zone', 'time', '']) {
    assert.deepEqual(formatResult(column(type, [1, 1700000000]), plain).values, [[1], [1700000000]], type)
  }
  assert.deepEqual(formatResult(column('text', ['2024-01-02']), plain).values, [['2024-01-02']])
})

test('associative rows hold the converted values', () => {
  const result: StatementResult = {
    kind: 'rows',
    columns: ['id', 'b', 'd'],
    types: ['integer', 'boolean', 'datetime'],
    values: [
      [1, 1, 1700000000],
      [2, 0, '2024-01-02 03:04'],
    ],
  }
  assert.deepEqual(formatResult(result, associative), {
    types: { id: 'integer', b: 'boolean', d: 'datetime' },
    rows: [
      { id: 1, b: true, d: '2023-11-14T22:13:20Z' },
      { id: 2, b: false, d: '2024-01-02T03:04:00Z' },
    ],
  })
})

test('a time rqlite cannot marshal makes the whole statement its error, without rows or time', () => {
  const yearError = 'Time.MarshalText: year outside of range [0,9999]'
  // 1e12 seconds is in the year 33658; the bad value is in a later row.
  const result: StatementResult = { ...column('datetime', [1700000000, 1e12]), timeSec: 0.001 }
  assert.deepEqual(formatResult(result, plain), { error: yearError })
  assert.deepEqual(formatResult(result, { ...plain, timings: true }), { error: yearError })
  assert.deepEqual(formatResult(result, associative), { rows: [], error: yearError })
  assert.deepEqual(formatResult(column('timestamp', ['2024-01-02 03:04:05+24:00']), plain), {
    error: 'Time.MarshalText: timezone hour outside of range [0,23]',
  })
})

test('columns of other types are answered as before', () => {
  const result: StatementResult = {
    kind: 'rows',
    columns: ['i', 'r', 't', 'x', 'e'],
    types: ['integer', 'real', 'text', 'blob', ''],
    values: [[1, 1.5, 'a', Uint8Array.of(104, 105), Buffer.from('hi')]],
    firstRowClasses: ['integer', 'real', 'text', 'blob', 'blob'],
    timeSec: 0.5,
  }
  assert.deepEqual(formatResult(result, { ...plain, timings: true }), {
    columns: ['i', 'r', 't', 'x', 'e'],
    types: ['integer', 'real', 'text', 'blob', 'text'],
    values: [[1, 1.5, 'a', 'aGk=', 'hi']],
    time: 0.5,
  })
})
