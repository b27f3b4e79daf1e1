/**
 * Properties of the request parser against arbitrary bodies (fast-check). Seeded: a failure
 * prints its seed and shrunk counterexample; rerun with that seed to reproduce.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isTandemError } from '../shared/errors.ts'
import type { SqlStatement } from '../storage/index.ts'
import { decodeUtf8Strict, parseStatements, statementsFrom } from './request-parser.ts'

const seed = 160503

function isBadRequest(error: unknown): boolean {
  return isTandemError(error) && error.code === 'BAD_REQUEST'
}

function isSqlValue(value: unknown): boolean {
  return value === null || ['string', 'number', 'bigint'].includes(typeof value) || value instanceof Uint8Array
}

/** Statements, or BAD_REQUEST; anything else (TypeError, RangeError) fails the property. */
function statementsOrBadRequest(parse: () => SqlStatement[]): void {
  let statements: SqlStatement[]
  try {
    statements = parse()
  } catch (error) {
    if (isBadRequest(error)) return
    throw error
  }
  assert.ok(statements.length > 0)
  for (const s of statements) {
    assert.equal(typeof s.sql, 'string')
    assert.notEqual(s.sql.trim(), '')
    const params = s.params === undefined ? [] : Array.isArray(s.params) ? s.params : Object.values(s.params)
    for (const value of params) assert.ok(isSqlValue(value), `parameter ${String(value)}`)
  }
}

// Bodies shaped like requests (arrays of SQL and parameter lists) as well as anything at all.
const sqlValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.string(),
  fc.constantFrom("x'0a1b'", "X''", "x'0'", ' x\'ff\' '),
  fc.array(fc.integer({ min: -2, max: 300 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer()),
)
const statementLike = fc.oneof(
  fc.string(),
  fc.tuple(fc.string(), fc.array(sqlValue, { maxLength: 4 })).map(([sql, params]) => [sql, ...params]),
  fc.tuple(fc.string(), fc.dictionary(fc.string({ maxLength: 6 }), sqlValue)),
  fc.jsonValue({ maxDepth: 3 }),
)
const body = fc.oneof(
  fc.array(statementLike, { maxLength: 5 }),
  fc.jsonValue(),
  fc.anything({ maxDepth: 3, withBigInt: true, withNullPrototype: true, withTypedArray: true }),
)

test('any parsed body gives statements with SQL values or BAD_REQUEST', () => {
  fc.assert(
    fc.property(body, (parsed) => {
      statementsOrBadRequest(() => statementsFrom(parsed))
    }),
    { seed, numRuns: 2000 },
  )
})

test('any body text gives statements or BAD_REQUEST, as JSON or text/plain', () => {
  const text = fc.oneof(
    fc.string(),
    fc.fullUnicodeString(),
    body.map((b) => JSON.stringify(b, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) ?? ''),
    fc.bigInt().map((n) => `[["SELECT ?", ${n}, ${n}.5, ${n}e400]]`),
  )
  fc.assert(
    fc.property(text, fc.constantFrom(undefined, 'application/json', 'text/plain', 'text/plain; charset=utf-8'), (input, contentType) => {
      statementsOrBadRequest(() => parseStatements(input, contentType))
    }),
    { seed, numRuns: 2000 },
  )
})

test('deeply nested JSON arrays answer BAD_REQUEST, not a stack overflow', () => {
  for (const depth of [10_000, 100_000]) {
    const deep = '['.repeat(depth) + ']'.repeat(depth)
    assert.throws(() => parseStatements(deep, 'application/json'), isBadRequest)
    assert.throws(() => parseStatements(`[["SELECT ?", ${deep}]]`, 'application/json'), isBadRequest)
    // 16 digits send the body through the lossless parser.
    assert.throws(() => parseStatements(`[["SELECT ?", 1234567890123456, ${deep}]]`, 'application/json'), isBadRequest)
    assert.throws(() => parseStatements(`[["SELECT ?", {"a": ${deep}}]]`, 'application/json'), isBadRequest)
  }
})

test('arbitrary bytes decode as the UTF-8 text they are, or BAD_REQUEST', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.fullUnicodeString().map((s) => new TextEncoder().encode(s))), (bytes) => {
      let text: string
      try {
        text = decodeUtf8Strict(bytes)
      } catch (error) {
        if (isBadRequest(error)) return
        throw error
      }
      // Valid UTF-8 only: the text encodes back to exactly these bytes (a BOM included).
      assert.deepEqual(new TextEncoder().encode(text), Uint8Array.from(bytes))
    }),
    { seed, numRuns: 2000 },
  )
})

test('named parameters keep every name given, __proto__ included, on a plain object', () => {
  const name = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'))
  const value = fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.constant([1, 2]), fc.constant("x'00'"))
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(name, value), { selector: ([n]) => n, minLength: 1, maxLength: 5 }), (pairs) => {
      // JSON.parse defines "__proto__" as an own key, as a body's JSON does.
      const dict = JSON.parse(JSON.stringify(Object.fromEntries(pairs))) as Record<string, unknown>
      const [statement] = statementsFrom([['SELECT 1', dict]])
      const params = statement!.params as Record<string, unknown>
      assert.equal(Object.getPrototypeOf(params), Object.prototype)
      assert.deepEqual(Object.keys(params).sort(), pairs.map(([n]) => n).sort())
    }),
    { seed, numRuns: 500 },
  )
})

test('a named parameter called __proto__ is a value, not the params object\'s prototype (found by fuzzing)', () => {
  const [statement] = statementsFrom(JSON.parse('[["SELECT :__proto__", {"__proto__": [1, 2]}]]'))
  const params = statement!.params as Record<string, unknown>
  assert.ok(!(params instanceof Uint8Array))
  assert.deepEqual(Object.keys(params), ['__proto__'])
  assert.deepEqual(params['__proto__'], Uint8Array.from([1, 2]))
})
