import { test } from 'node:test'
import assert from 'node:assert/strict'
import { marshalTime, parseTimeText, timeOfInteger, TimeMarshalError, zeroTime } from './rqlite-time.ts'

const yearError = 'Time.MarshalText: year outside of range [0,9999]'
const zoneError = 'Time.MarshalText: timezone hour outside of range [0,23]'

/** What rqlite answers, or the error it answers the statement with. */
function answer(time: () => ReturnType<typeof timeOfInteger>): string {
  try {
    return marshalTime(time())
  } catch (error) {
    assert.ok(error instanceof TimeMarshalError, String(error))
    return `error: ${error.message}`
  }
}

// Each pair measured against rqlited 8.26.8 (an INTEGER inserted into a DATETIME column, read by /db/query).
const integers: [number | bigint, string][] = [
  [1700000000, '2023-11-14T22:13:20Z'],
  [1700000000123, '2023-11-14T22:13:20.123Z'],
  [-86400, '1969-12-31T00:00:00Z'],
  [0, '1970-01-01T00:00:00Z'],
  [-1, '1969-12-31T23:59:59Z'],
  // ±1e12 exactly are seconds, 31 000 years away: rqlite cannot marshal them.
  [1e12, `error: ${yearError}`],
  [-1e12, `error: ${yearError}`],
  [999999999999, `error: ${yearError}`],
  [1000000000001, '2001-09-09T01:46:40.001Z'],
  [-1000000000001, '1938-04-24T22:13:19.999Z'],
  [253402300799, '9999-12-31T23:59:59Z'],
  [253402300800, `error: ${yearError}`],
  [-62167219200, '0000-01-01T00:00:00Z'],
  [-62167219201, `error: ${yearError}`],
  [-62135596800, '0001-01-01T00:00:00Z'],
  // Milliseconds past ±2^63 nanoseconds wrap in Go's int64.
  [9223372036854, '2262-04-11T23:47:16.854Z'],
  [9223372036855, '1677-09-21T00:12:43.145448384Z'],
  [-9223372036855, '2262-04-11T23:47:16.854551616Z'],
  [9223372036854775807n, '1969-12-31T23:59:59.999Z'],
  [-9223372036854775808n, '1970-01-01T00:00:00Z'],
]

test('an INTEGER is seconds up to ±1e12 and milliseconds past it, answered as rqlited answers it', () => {
  for (const [value, expected] of integers) assert.equal(answer(() => timeOfInteger(value)), expected, String(value))
})

test('an INTEGER as a number or as a bigint is the same time', () => {
  for (const value of [1700000000, 1700000000123, -1000000000001, 9007199254740991]) {
    assert.deepEqual(timeOfInteger(value), timeOfInteger(BigInt(value)))
  }
})

// Each pair measured against rqlited 8.26.8 (TEXT inserted into a DATETIME column).
const texts: [string, string][] = [
  ['2024-01-02', '2024-01-02T00:00:00Z'],
  ['2024-01-02 03:04:05', '2024-01-02T03:04:05Z'],
  ['2024-01-02 03:04:05.678', '2024-01-02T03:04:05.678Z'],
  ['2024-01-02 03:04', '2024-01-02T03:04:00Z'],
  ['2024-01-02T03:04:05', '2024-01-02T03:04:05Z'],
  ['2024-01-02T03:04', '2024-01-02T03:04:00Z'],
  ['1969-07-20 20:17:40', '1969-07-20T20:17:40Z'],
  ['1960-01-01 00:00:00.25', '1960-01-01T00:00:00.25Z'],
  ['0001-01-01', '0001-01-01T00:00:00Z'],
  ['0000-01-01', '0000-01-01T00:00:00Z'],
  ['9999-12-31 23:59:59.999999999', '9999-12-31T23:59:59.999999999Z'],
  // Leap days: Go's proleptic Gregorian calendar, year 0 included.
  ['2024-02-29', '2024-02-29T00:00:00Z'],
  ['2000-02-29', '2000-02-29T00:00:00Z'],
  ['0000-02-29', '0000-02-29T00:00:00Z'],
  ['2023-02-29', '0001-01-01T00:00:00Z'],
  ['1900-02-29', '0001-01-01T00:00:00Z'],
  ['2024-04-31', '0001-01-01T00:00:00Z'],
  // Offsets are kept; a zero one is UTC.
  ['2024-01-02 03:04:05+02:00', '2024-01-02T03:04:05+02:00'],
  ['2024-01-02 03:04:05-05:30', '2024-01-02T03:04:05-05:30'],
  ['2024-01-02T03:04:05.123456789-05:30', '2024-01-02T03:04:05.123456789-05:30'],
  ['2024-01-02 03:04:05+00:00', '2024-01-02T03:04:05Z'],
  ['2024-01-02 03:04:05-00:00', '2024-01-02T03:04:05Z'],
  ['2024-01-02 03:04:05+00:30', '2024-01-02T03:04:05+00:30'],
  ['2024-01-02 03:04:05+23:59', '2024-01-02T03:04:05+23:59'],
  ['2024-01-02 03:04:05-23:59', '2024-01-02T03:04:05-23:59'],
  ['9999-12-31 23:59:59-01:00', '9999-12-31T23:59:59-01:00'],
  ['0000-01-01 00:00:00+01:00', '0000-01-01T00:00:00+01:00'],
  ['2024-02-29 23:30:00-01:00', '2024-02-29T23:30:00-01:00'],
  ['2024-01-02 03:04:05.5+02:00', '2024-01-02T03:04:05.5+02:00'],
  ['2024-01-02 03:04:05,5+02:00', '2024-01-02T03:04:05.5+02:00'],
  // The offset's minutes are not range-checked; 24 hours or more cannot be marshalled.
  ['2024-01-02 03:04:05+01:75', '2024-01-02T03:04:05+02:15'],
  ['2024-01-02 03:04:05+01:60', '2024-01-02T03:04:05+02:00'],
  ['2024-01-02 03:04:05+24:00', `error: ${zoneError}`],
  ['2024-01-02 03:04:05+25:00', `error: ${zoneError}`],
  ['2024-01-02 03:04:05+02', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05+0200', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05+2:00', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05+02:00:00', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05+ab:cd', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05*02:00', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05 +02:00', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04+02:00', '0001-01-01T00:00:00Z'],
  // Fractions: 1 to 9 digits kept (more truncated), `.` or `,`, trailing zeros dropped.
  ['2024-01-02 03:04:05.1234567891234', '2024-01-02T03:04:05.123456789Z'],
  ['2024-01-02 03:04:05.9999999999', '2024-01-02T03:04:05.999999999Z'],
  ['2024-01-02 03:04:05,5', '2024-01-02T03:04:05.5Z'],
  ['2024-01-02T03:04:05,123', '2024-01-02T03:04:05.123Z'],
  ['2024-01-02T03:04:05.5', '2024-01-02T03:04:05.5Z'],
  ['2024-01-02T03:04:05.000', '2024-01-02T03:04:05Z'],
  ['2024-01-02 03:04:05.100000000', '2024-01-02T03:04:05.1Z'],
  ['2024-01-02 03:04:05.', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05.+02:00', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05.5.5', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05.5,5', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04.5', '0001-01-01T00:00:00Z'],
  // One trailing Z is dropped, and only one.
  ['2024-01-02Z', '2024-01-02T00:00:00Z'],
  ['2024-01-02 03:04:05Z', '2024-01-02T03:04:05Z'],
  ['2024-01-02 03:04:05.5Z', '2024-01-02T03:04:05.5Z'],
  ['2024-01-02T03:04:05+02:00Z', '2024-01-02T03:04:05+02:00'],
  ['2024-01-02ZZ', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05ZZ', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05z', '0001-01-01T00:00:00Z'],
  // The hour may have one digit; the other fields need exactly their digits.
  ['2024-01-02 3:04:05', '2024-01-02T03:04:05Z'],
  ['2024-01-02 3:04', '2024-01-02T03:04:00Z'],
  ['2024-01-02 003:04', '0001-01-01T00:00:00Z'],
  ['2024-1-02', '0001-01-01T00:00:00Z'],
  ['2024-01-2', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:5', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:4', '0001-01-01T00:00:00Z'],
  ['+2024-01-02', '0001-01-01T00:00:00Z'],
  ['१९७०-01-01', '0001-01-01T00:00:00Z'],
  // Ranges.
  ['2024-13-45', '0001-01-01T00:00:00Z'],
  ['2024-00-10', '0001-01-01T00:00:00Z'],
  ['2024-01-00', '0001-01-01T00:00:00Z'],
  ['2024-01-32', '0001-01-01T00:00:00Z'],
  ['2024-01-02 24:00:00', '0001-01-01T00:00:00Z'],
  ['2024-01-02 23:60', '0001-01-01T00:00:00Z'],
  ['2024-01-02 23:59:60', '0001-01-01T00:00:00Z'],
  ['2024-01-02 -3:04', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:-4', '0001-01-01T00:00:00Z'],
  // Spaces: a layout's space takes a run of them, but not none before more text, nor a tab.
  ['2024-01-02  03:04:05', '2024-01-02T03:04:05Z'],
  ['2024-01-02  3:04', '2024-01-02T03:04:00Z'],
  [' 2024-01-02', '0001-01-01T00:00:00Z'],
  ['2024-01-02 ', '0001-01-01T00:00:00Z'],
  ['2024-01-02 03:04:05 ', '0001-01-01T00:00:00Z'],
  ['2024-01-02\t03:04:05', '0001-01-01T00:00:00Z'],
  ['2024-01-02t03:04:05', '0001-01-01T00:00:00Z'],
  // Not a time at all: the zero time.
  ['not a date', '0001-01-01T00:00:00Z'],
  ['', '0001-01-01T00:00:00Z'],
]

test('TEXT parses by the first of the driver\'s layouts that fits, answered as rqlited answers it', () => {
  for (const [text, expected] of texts) assert.equal(answer(() => parseTimeText(text)), expected, JSON.stringify(text))
})

test('text no layout parses is Go\'s zero time', () => {
  assert.deepEqual(parseTimeText('not a date'), zeroTime)
  assert.equal(marshalTime(zeroTime), '0001-01-01T00:00:00Z')
})

test('a parsed time is the instant its text names, whatever its offset', () => {
  assert.deepEqual(parseTimeText('2024-01-02 03:04:05+02:00'), { unixSec: Date.UTC(2024, 0, 2, 1, 4, 5) / 1000, nanos: 0, offsetSec: 7200 })
  assert.deepEqual(parseTimeText('2024-01-02T03:04:05.123456789-05:30'), {
    unixSec: Date.UTC(2024, 0, 2, 8, 34, 5) / 1000,
    nanos: 123456789,
    offsetSec: -19800,
  })
  assert.deepEqual(parseTimeText('2024-01-02 03:04:05-00:00'), { unixSec: Date.UTC(2024, 0, 2, 3, 4, 5) / 1000, nanos: 0, offsetSec: 0 })
})

test('seconds across years 0 to 9999 format as JavaScript\'s own calendar does, and parses back', () => {
  // Date.toISOString covers years 0..9999 in the same proleptic Gregorian calendar.
  const first = -62167219200
  const last = 253402300799
  const stepSec = 7_777_777 // about 90 days, never a whole day, so the clock moves too
  for (let unixSec = first; unixSec <= last; unixSec += stepSec) {
    const expected = new Date(unixSec * 1000).toISOString().replace('.000Z', 'Z')
    const text = marshalTime({ unixSec, nanos: 0, offsetSec: 0 })
    assert.equal(text, expected)
    assert.equal(marshalTime(parseTimeText(text)), text)
  }
})
