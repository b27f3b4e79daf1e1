/**
 * JSON in and out without losing 64-bit integers. JSON.parse turns 9007199254740993 into
 * ...992; SQLite holds 64-bit integers, and rqlite clients send and read them exactly.
 */
import { parse as parseLossless } from 'lossless-json'
import { sqlReal, type SqlReal } from '../storage/index.ts'

const minSafe = BigInt(Number.MIN_SAFE_INTEGER)
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER)
const minInt64 = -(2n ** 63n)
const maxInt64 = 2n ** 63n - 1n

function parseNumber(text: string): number | bigint | SqlReal {
  if (/[.eE]/.test(text)) {
    // Written with a fraction or an exponent: a REAL, as rqlite binds it (json.Number.Int64()
    // fails), even when its value is integral.
    const value = Number(text)
    return Number.isInteger(value) && Number.isSafeInteger(value) ? sqlReal(value) : value
  }
  if (/^-?\d+$/.test(text)) {
    const value = BigInt(text)
    if (value >= minSafe && value <= maxSafe) return Number(value)
    // Beyond int64 SQLite cannot bind an integer; rqlite binds such a number as a REAL
    // (strconv.ParseInt fails, ParseFloat succeeds), so the statement still runs.
    return value >= minInt64 && value <= maxInt64 ? value : Number(text)
  }
  return Number(text)
}

/**
 * Parses JSON; integers beyond 2^53 become bigints, and numbers written as REALs with integral
 * values (`1.0`, `1e3`) SqlReals, which a plain number cannot tell from integers.
 */
export function parseJson(text: string): unknown {
  // Fast path: only a run of 16+ digits can exceed 2^53, and a REAL starts with digits followed by
  // `.` or an exponent (this also matches some SQL text, which only costs the slower parse).
  if (!/\d{16}/.test(text) && !/[[,:]\s*-?\d+[.eE]/.test(text)) return JSON.parse(text)
  return parseLossless(text, null, parseNumber)
}

const bigintMarker = '\u0000bigint:'
const numberMarker = '\u0000number:'

/**
 * A number JSON.stringify would not write as itself (±Infinity becomes null, -0 becomes 0), to be
 * written as `1e999`, `-1e999` or `-0`: JSON numbers that JavaScript (and most readers) read back
 * as the same value. SQLite holds all three as REALs.
 */
export function exactNumber(value: number): string {
  return `${numberMarker}${value === Infinity ? '1e999' : value === -Infinity ? '-1e999' : '-0'}`
}

/** Is this an exactNumber() placeholder? */
export function isExactNumber(value: string): boolean {
  return value.startsWith(numberMarker)
}

function bigintAsMarker(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${bigintMarker}${value}` : value
}

/**
 * Serializes JSON; bigints are written as plain JSON integers. Most answers hold none, and a
 * replacer function costs a call per value, so the plain JSON.stringify runs first: it throws a
 * TypeError on the first bigint, and only then is the value serialized again with the replacer.
 */
export function stringifyJson(value: unknown, pretty = false): string {
  const space = pretty ? 4 : undefined
  let text: string
  try {
    text = JSON.stringify(value, null, space)
  } catch (error) {
    if (!(error instanceof TypeError)) throw error
    // A TypeError for another reason (a cycle) is thrown again from here.
    text = JSON.stringify(value, bigintAsMarker, space).replace(/"\\u0000bigint:(-?\d+)"/g, '$1')
  }
  return text.includes('\\u0000number:') ? text.replace(/"\\u0000number:(-?(?:1e999|0))"/g, '$1') : text
}
