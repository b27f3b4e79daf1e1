/**
 * Times as rqlite 8.26.8 answers them in columns declared DATE, DATETIME or TIMESTAMP. Its SQLite
 * driver (rqlite/go-sqlite3 v1.33.0, rows.Next) turns such a value into a Go time.Time, and rqlite
 * (db.go normalizeRowValues) answers that time's MarshalText (Go 1.22). Measured against rqlited.
 *
 * - INTEGER v: milliseconds since the epoch when v > 1e12 or v < -1e12, else seconds; UTC. The
 *   milliseconds become nanoseconds in an int64 that wraps past ±2^63 ns (±292 years), so
 *   9223372036855 answers 1677-09-21T00:12:43.145448384Z.
 * - TEXT: one trailing `Z` dropped, then the first of `layouts` that parses, as Go's
 *   time.ParseInLocation(layout, text, time.UTC) parses it; a parsed offset is kept, and one of
 *   zero is UTC. Text that no layout parses is the zero time, 0001-01-01T00:00:00Z.
 * - The answer is RFC 3339 with nanoseconds (Go's RFC3339Nano: `2006-01-02T15:04:05.999999999Z07:00`,
 *   the fraction only when non-zero and without trailing zeros, `Z` for UTC). A time whose year
 *   is outside 0..9999, or whose offset is 24 hours or more, cannot be marshalled: rqlite then
 *   answers the whole statement with MarshalText's error (TimeMarshalError).
 */

/** A Go time.Time as the driver builds it: an instant, and the zone offset it is shown in. */
export interface GoTime {
  /** Seconds since 1970-01-01T00:00:00Z. */
  readonly unixSec: number
  /** Invariant: an integer in 0..999_999_999. */
  readonly nanos: number
  /** Seconds east of UTC; 0 is UTC, shown as `Z`. Invariant: a multiple of 60. */
  readonly offsetSec: number
}

/** Go's time.Time{}: what text no layout parses becomes. */
export const zeroTime: GoTime = { unixSec: -62_135_596_800, nanos: 0, offsetSec: 0 }

/** Time.MarshalText's failure; its message is rqlite's whole answer for the statement. */
export class TimeMarshalError extends Error {
  override name = 'TimeMarshalError'
}

const secPerDay = 86_400
const msThreshold = 1_000_000_000_000n
const nsPerSec = 1_000_000_000n

/** The time an INTEGER stands for: seconds, or milliseconds past ±1e12 (not at it). */
export function timeOfInteger(value: number | bigint): GoTime {
  const integer = BigInt(value)
  if (integer <= msThreshold && integer >= -msThreshold) return { unixSec: Number(integer), nanos: 0, offsetSec: 0 }
  // Go multiplies in an int64 (val *= int64(time.Millisecond)) and wraps silently on overflow.
  const ns = BigInt.asIntN(64, integer * 1_000_000n)
  let sec = ns / nsPerSec
  let nanos = ns % nsPerSec
  if (nanos < 0n) {
    nanos += nsPerSec
    sec -= 1n
  }
  return { unixSec: Number(sec), nanos: Number(nanos), offsetSec: 0 }
}

/** go-sqlite3's SQLiteTimestampFormats, tried in this order. */
const layouts = [
  '2006-01-02 15:04:05.999999999-07:00',
  '2006-01-02T15:04:05.999999999-07:00',
  '2006-01-02 15:04:05.999999999',
  '2006-01-02T15:04:05.999999999',
  '2006-01-02 15:04:05',
  '2006-01-02T15:04:05',
  '2006-01-02 15:04',
  '2006-01-02T15:04',
  '2006-01-02',
] as const

/** A layout as Go reads it: its elements, and single characters taken literally. */
const layoutElements = layouts.map((layout) => layout.match(/2006|01|02|15|04|05|\.999999999|-07:00|./g) ?? [])

/** The time `text` stands for, or the zero time when no layout parses it. */
export function parseTimeText(text: string): GoTime {
  const value = text.endsWith('Z') ? text.slice(0, -1) : text
  for (const elements of layoutElements) {
    const time = parseLayout(elements, value)
    if (time !== undefined) return time
  }
  return zeroTime
}

type Field = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second'

/**
 * Go's numeric layout elements: the field each sets, its digits (sticky patterns, matched at a
 * position) and its range. 2006 is exactly 4 digits, 15 one or two, the others exactly two; the
 * day is checked against its month once the whole text is read, as Go does.
 */
const numericElements: Partial<Record<string, { field: Field; pattern: RegExp; min: number; max: number }>> = {
  '2006': { field: 'year', pattern: /\d{4}/y, min: 0, max: 9999 },
  '01': { field: 'month', pattern: /\d\d/y, min: 1, max: 12 },
  '02': { field: 'day', pattern: /\d\d/y, min: 0, max: 99 },
  '15': { field: 'hour', pattern: /\d\d?/y, min: 0, max: 23 },
  '04': { field: 'minute', pattern: /\d\d/y, min: 0, max: 59 },
  '05': { field: 'second', pattern: /\d\d/y, min: 0, max: 59 },
}
const fractionPattern = /[.,](\d+)/y
const offsetPattern = /([+-])(\d\d):(\d\d)/y

/**
 * Go's time.parse for the elements these layouts use, or undefined where it fails. Go's rules
 * kept: a space in the layout takes one or more spaces (or none at the end of the text); a
 * fraction of a second may follow the seconds, with `.` or `,`, and is truncated to 9 digits;
 * the offset's hours and minutes are not range-checked (+01:75 is +02:15); the whole text must
 * be read.
 */
function parseLayout(elements: readonly string[], text: string): GoTime | undefined {
  let at = 0
  const match = (pattern: RegExp): RegExpExecArray | null => {
    pattern.lastIndex = at
    const found = pattern.exec(text)
    if (found !== null) at = pattern.lastIndex
    return found
  }
  const fields: Record<Field, number> = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 }
  let nanos = 0
  let offsetSec = 0
  for (const [i, element] of elements.entries()) {
    const numeric = numericElements[element]
    if (numeric !== undefined) {
      const found = match(numeric.pattern)
      const value = Number(found?.[0])
      if (found === null || value < numeric.min || value > numeric.max) return undefined
      fields[numeric.field] = value
      // A fraction with no element of its own in the layout is taken by the seconds.
      if (element === '05' && elements[i + 1] !== '.999999999') nanos = fractionNanos(match(fractionPattern)?.[1])
    } else if (element === '.999999999') {
      nanos = fractionNanos(match(fractionPattern)?.[1])
    } else if (element === '-07:00') {
      const found = match(offsetPattern)
      if (found === null) return undefined
      const [, sign, hours, minutes] = found
      const offsetAbsSec = (Number(hours) * 60 + Number(minutes)) * 60
      offsetSec = sign === '-' ? -offsetAbsSec : offsetAbsSec
    } else if (element === ' ') {
      if (at < text.length && text[at] !== ' ') return undefined
      while (text[at] === ' ') at++
    } else {
      if (text[at] !== element) return undefined
      at++
    }
  }
  const { year, month, day, hour, minute, second } = fields
  if (at !== text.length || day < 1 || day > daysIn(month, year)) return undefined
  const unixSec = daysFromCivil(year, month, day) * secPerDay + hour * 3600 + minute * 60 + second - offsetSec
  // -00:00 is UTC too.
  return { unixSec, nanos, offsetSec: offsetSec === 0 ? 0 : offsetSec }
}

/** Nanoseconds of a fraction's digits (none: 0), truncated to 9 digits as Go does. */
function fractionNanos(fraction: string | undefined): number {
  return fraction === undefined ? 0 : Number(fraction.slice(0, 9).padEnd(9, '0'))
}

/**
 * Go's Time.MarshalText: RFC3339Nano. Throws TimeMarshalError where Go's fails: a year outside
 * 0..9999 (checked first), an offset of 24 hours or more.
 */
export function marshalTime(time: GoTime): string {
  const local = time.unixSec + time.offsetSec
  const days = Math.floor(local / secPerDay)
  const secOfDay = local - days * secPerDay
  const { year, month, day } = civilFromDays(days)
  if (year < 0 || year > 9999) throw new TimeMarshalError('Time.MarshalText: year outside of range [0,9999]')
  const offsetMin = Math.abs(time.offsetSec) / 60
  if (offsetMin >= 24 * 60) throw new TimeMarshalError('Time.MarshalText: timezone hour outside of range [0,23]')
  const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`
  const clock = `${pad(Math.floor(secOfDay / 3600), 2)}:${pad(Math.floor(secOfDay / 60) % 60, 2)}:${pad(secOfDay % 60, 2)}`
  const fraction = time.nanos === 0 ? '' : `.${pad(time.nanos, 9).replace(/0+$/, '')}`
  const zone = time.offsetSec === 0 ? 'Z' : `${time.offsetSec < 0 ? '-' : '+'}${pad(Math.floor(offsetMin / 60), 2)}:${pad(offsetMin % 60, 2)}`
  return `${date}T${clock}${fraction}${zone}`
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0')
}

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
}

function daysIn(month: number, year: number): number {
  if (month === 2) return isLeap(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Days since 1970-01-01 of a proleptic Gregorian date, as Go counts (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

/** The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's civil_from_days). */
function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const dayOfEra = z - era * 146_097
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365)
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day }
}
