import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { StatementResult } from '../storage/index.ts'
import { stringifyJson } from './json.ts'
import { readAnswerBody, resultsJson } from './read-answer.ts'
import { formatResult, type FormatOptions } from './rqlite-format.ts'

/** The body as the read route built it before the split: objects formatted, then serialized whole. */
function bodyBefore(results: StatementResult[], options: FormatOptions, timeSec: number): string {
  const body: Record<string, unknown> = { results: results.map((r) => formatResult(r, options)) }
  if (options.timings) body['time'] = timeSec
  return stringifyJson(body)
}

const blob = Uint8Array.from([0, 1, 127, 128, 255, 10, 34, 92])
/** A Buffer view into a larger allocation, as SQLite bindings may hand BLOBs out. */
const blobView = Buffer.from([9, 9, 104, 105, 0, 200, 9]).subarray(2, 6)

const resultSets: Record<string, StatementResult[]> = {
  'no statements': [],
  'rows of every type': [
    {
      kind: 'rows',
      columns: ['id', 'name', 'score', 'big', 'data', 'note'],
      types: ['integer', 'text', 'real', 'integer', 'blob', ''],
      values: [
        [1, 'ada', 1.5, 9223372036854775807n, blob, null],
        [2, 'quote " backslash \\ newline \n tab \t \u2028 é 漢', 0.1, -9223372036854775808n, blobView, 3],
        [3, '', -0, 9007199254740993n, new Uint8Array(0), 1e21],
        [4, null, 1e-7, -9007199254740993n, null, 'text'],
      ],
      timeSec: 0.000123,
    },
  ],
  'BLOBs in text-typed and untyped columns': [
    {
      kind: 'rows',
      columns: ['t', 'v', 'e', 'j'],
      types: ['text', 'varchar(10)', '', 'json'],
      values: [
        [Buffer.from('as text'), Buffer.from('varchar'), Buffer.from('expression'), Buffer.from('{"a":1}')],
        [blob, blob, blob, blob],
      ],
    },
  ],
  'an untyped column whose first row is NULL': [
    { kind: 'rows', columns: ['x', 'y'], types: ['', ''], values: [[null, 1.25], [blob, 2], [7n, 'x']] },
  ],
  'an empty result set': [{ kind: 'rows', columns: ['a', 'b'], types: ['integer', 'text'], values: [], timeSec: 1e-6 }],
  'rows without columns': [{ kind: 'rows', columns: [], types: [], values: [] }],
  'execs and errors': [
    { kind: 'exec', rowsAffected: 0, lastInsertId: 0, timeSec: 0.5 },
    { kind: 'exec', rowsAffected: 3, lastInsertId: 42 },
    { kind: 'exec', rowsAffected: 1, lastInsertId: 9223372036854775807n },
    { kind: 'error', error: 'no such table: nope', timeSec: 0.002 },
    { kind: 'error', error: 'near "SELEC": syntax error "quoted"' },
  ],
  'odd column names': [
    { kind: 'rows', columns: ['count(*)', 'a"b', '', 'toJSON'], types: ['', 'text', 'integer', 'text'], values: [[5, 'q', 0, 'z']] },
  ],
  'a mix': [
    { kind: 'rows', columns: ['n'], types: ['integer'], values: [[1], [2]] },
    { kind: 'error', error: 'attempt to change database via query operation' },
    { kind: 'rows', columns: ['big'], types: [''], values: [[-9223372036854775808n]] },
    { kind: 'exec', rowsAffected: 0, lastInsertId: 0 },
  ],
}

const flagSets: FormatOptions[] = []
for (const associative of [false, true]) {
  for (const timings of [false, true]) {
    for (const blobArray of [false, true]) flagSets.push({ associative, timings, blobArray })
  }
}

test('the answer built in two halves has the very bytes of the answer built whole, for every flag combination', () => {
  for (const [name, results] of Object.entries(resultSets)) {
    for (const options of flagSets) {
      for (const timeSec of [0.000456789, 2, 1e-9]) {
        const split = readAnswerBody(resultsJson(results, options), options.timings ? timeSec : undefined)
        assert.equal(split, bodyBefore(results, options, timeSec), `${name} ${JSON.stringify(options)} time ${timeSec}`)
      }
    }
  }
})

test('64-bit integers stay exact in the results text', () => {
  const text = resultsJson(resultSets['rows of every type']!, { associative: false, timings: false, blobArray: false })
  assert.match(text, /9223372036854775807,"AAF/)
  assert.match(text, /-9223372036854775808/)
  assert.match(text, /9007199254740993/)
})
