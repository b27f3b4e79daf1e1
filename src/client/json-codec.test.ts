import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseJson, stringifyJson } from './json-codec.ts'

test('integers beyond 2^53 parse as exact bigints, everything else as JSON.parse does', () => {
  const text = '{"values":[[9007199254740993,-9223372036854775808,9007199254740991,1.5,1e300,"12345678901234567890"]],"lsn":3}'
  assert.deepEqual(parseJson(text), { values: [[9007199254740993n, -9223372036854775808n, 9007199254740991, 1.5, 1e300, '12345678901234567890']], lsn: 3 })
})

test('digits inside strings, escaped quotes included, are never taken for numbers', () => {
  const text = '["a \\"12345678901234567890\\" b", 12345678901234567890, "\\\\", 1]'
  assert.deepEqual(parseJson(text), ['a "12345678901234567890" b', 12345678901234567890n, '\\', 1])
})

test('a string a server sends cannot pass for a marked integer', () => {
  const forged = '["\\u0000tandem-int64-000000000000:12345678901234567890", 12345678901234567890]'
  const parsed = parseJson(forged) as unknown[]
  assert.equal(typeof parsed[0], 'string')
  assert.equal(parsed[1], 12345678901234567890n)
})

test('bigints are written as JSON integers and read back exactly', () => {
  const value = [['INSERT INTO t VALUES (?, ?)', 2n ** 63n - 1n, 'x'], { a: -5n, b: null }]
  const text = stringifyJson(value)
  assert.equal(text, '[["INSERT INTO t VALUES (?, ?)",9223372036854775807,"x"],{"a":-5,"b":null}]')
  assert.deepEqual(parseJson(text), [['INSERT INTO t VALUES (?, ?)', 2n ** 63n - 1n, 'x'], { a: -5, b: null }])
})
