import { test } from 'node:test'
import assert from 'node:assert/strict'
import { exactNumber, isExactNumber, parseJson, stringifyJson } from './json.ts'

test('64-bit integers survive parsing and serializing', () => {
  const parsed = parseJson('[["INSERT INTO t VALUES (?, ?, ?)", 9007199254740993, -9223372036854775808, 1.5]]') as unknown[][]
  assert.equal(parsed[0]![1], 9007199254740993n)
  assert.equal(parsed[0]![2], -9223372036854775808n)
  assert.equal(parsed[0]![3], 1.5)
  assert.equal(stringifyJson({ v: [9007199254740993n, 1, 'x'] }), '{"v":[9007199254740993,1,"x"]}')
})

test('safe integers stay numbers, and strings holding digits stay strings', () => {
  assert.deepEqual(parseJson('[1, "12345678901234567890", 42]'), [1, '12345678901234567890', 42])
})

test('an integer beyond int64 becomes a REAL, as rqlite binds it, instead of failing to bind', () => {
  const parsed = parseJson('[9223372036854775807, 9223372036854775808, -9223372036854775809]') as unknown[]
  assert.deepEqual(parsed, [9223372036854775807n, 9223372036854775808, -9223372036854775809])
})

test('bigints anywhere in an answer are written exact, pretty or not', () => {
  const answer = { results: [{ values: [[1, -9223372036854775808n], [9223372036854775807n, 'a']] }], lsn: 3 }
  assert.equal(stringifyJson(answer), '{"results":[{"values":[[1,-9223372036854775808],[9223372036854775807,"a"]]}],"lsn":3}')
  assert.equal(stringifyJson({ v: 9007199254740993n }, true), '{\n    "v": 9007199254740993\n}')
})

test('an answer without bigints is serialized once, as JSON.stringify does', () => {
  let passes = 0
  const counted = { toJSON: () => (passes++, 'x') }
  const answer = { results: [{ values: [[1, 'text', null, 1.5]] }], counted }
  assert.equal(stringifyJson(answer), JSON.stringify(answer))
  assert.equal(passes, 2, 'one pass for each of the two calls above')
  passes = 0
  stringifyJson({ counted, big: 1n })
  assert.equal(passes, 2, 'a bigint costs a second pass')
})

test('a value JSON cannot hold still fails', () => {
  const cyclic: Record<string, unknown> = {}
  cyclic['self'] = cyclic
  assert.throws(() => stringifyJson(cyclic), TypeError)
})

test('±Infinity and -0 placed by exactNumber() are written as 1e999, -1e999 and -0, beside bigints too; other strings stay', () => {
  const values = [exactNumber(Infinity), exactNumber(-Infinity), exactNumber(-0), 'number:1e999', 2n ** 63n - 1n]
  assert.equal(stringifyJson(values), '[1e999,-1e999,-0,"number:1e999",9223372036854775807]')
  assert.equal(stringifyJson(values.slice(0, 3)), '[1e999,-1e999,-0]')
  assert.deepEqual((JSON.parse(stringifyJson(values.slice(0, 3))) as number[]).map((v) => Object.is(v, -0) ? '-0' : String(v)), ['Infinity', '-Infinity', '-0'])
  assert.equal(isExactNumber(exactNumber(-0)), true)
  assert.equal(isExactNumber('-0'), false)
})
