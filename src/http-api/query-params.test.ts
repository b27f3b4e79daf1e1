import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemError } from '../shared/errors.ts'
import { duration, parseQueryParams, waitDuration } from './query-params.ts'

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

test('a wait a request asks for is at most an hour: a longer one is refused, not a timer that fires at once', () => {
  assert.equal(waitDuration('min_lsn_timeout', '1h'), 3_600_000)
  assert.throws(() => waitDuration('min_lsn_timeout', '25000h'), /min_lsn_timeout must be at most 1h/)
  assert.throws(() => parseQueryParams({ min_lsn: '5', min_lsn_timeout: '999999h' }), /at most 1h/)
  assert.throws(() => parseQueryParams({ sync: '1', sync_timeout: '2h' }), /sync_timeout must be at most 1h/)
})
