import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemError } from '../shared/errors.ts'
import { duration, parseQueryParams } from './query-params.ts'

test('flags are on by their presence, whatever their value', () => {
  const params = parseQueryParams({ transaction: 'false', pretty: '', timings: '0' })
  assert.equal(params.transaction, true)
  assert.equal(params.pretty, true)
  assert.equal(params.timings, true)
  assert.equal(params.associative, false)
})

test('Go durations parse to milliseconds', () => {
  assert.equal(duration('freshness', '1m30s'), 90_000)
  assert.equal(duration('freshness', '500ms'), 500)
  assert.equal(duration('freshness', '1.5s'), 1500)
})

test('bad values are refused with a clear BAD_REQUEST', () => {
  for (const query of [{ level: 'bogus' }, { freshness: 'abc' }, { min_lsn: '-1' }, { min_lsn: '1.5' }, { freshness_strict: '' }, { q: ' ' }]) {
    assert.throws(() => parseQueryParams(query), (e) => isTandemError(e, 'BAD_REQUEST'), JSON.stringify(query))
  }
})

test('a repeated parameter counts once, by its first value', () => {
  const params = parseQueryParams({ level: ['none', 'strong'], q: ['SELECT 1', 'SELECT 2'], min_lsn: ['7', 'x'] })
  assert.equal(params.level, 'none')
  assert.equal(params.q, 'SELECT 1')
  assert.equal(params.minLsn, 7)
})
