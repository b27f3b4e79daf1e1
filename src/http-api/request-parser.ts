/**
 * rqlite request bodies → statements. A body is a JSON array whose elements are either SQL text
 * (`"SELECT 1"`) or an array of SQL text and its parameters: positional
 * (`["INSERT INTO t VALUES (?, ?)", 1, "x"]`) or named (`["... :a", {"a": 1}]`). A
 * `text/plain` body is one SQL text. Parameter values: null, booleans (1/0), numbers, strings;
 * BLOBs as `"x'0a1b'"` or as an array of byte values.
 */
import { TandemError } from '../shared/errors.ts'
import { isSqlReal, type SqlParam, type SqlParams, type SqlStatement } from '../storage/index.ts'
import { parseJson } from './json.ts'

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * A request body's bytes as text, refusing invalid UTF-8 (BAD_REQUEST). Decoding leniently
 * would turn each bad byte into U+FFFD and run SQL the client never sent.
 */
export function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    throw new TandemError('BAD_REQUEST', 'the request body is not valid UTF-8: send SQL and JSON as UTF-8 text (BLOBs as parameters)')
  }
}

export function parseStatements(body: string, contentType: string | undefined): SqlStatement[] {
  if (contentType?.startsWith('text/plain')) {
    if (body.trim() === '') throw new TandemError('BAD_REQUEST', 'no statements: the body is empty')
    return [{ sql: body }]
  }
  let parsed: unknown
  try {
    parsed = parseJson(body)
  } catch (error) {
    throw new TandemError('BAD_REQUEST', `invalid JSON body: ${error instanceof Error ? error.message : String(error)}`)
  }
  return statementsFrom(parsed)
}

export function statementsFrom(parsed: unknown): SqlStatement[] {
  if (!Array.isArray(parsed)) {
    throw new TandemError('BAD_REQUEST', 'invalid request: the body must be a JSON array of statements, e.g. ["SELECT 1"] or [["SELECT ?", 1]]')
  }
  if (parsed.length === 0) throw new TandemError('BAD_REQUEST', 'no statements: the array is empty')
  const statements: SqlStatement[] = []
  parsed.forEach((element: unknown, index) => {
    if (typeof element === 'string') {
      if (element.trim() !== '') statements.push({ sql: element })
      return
    }
    if (!Array.isArray(element) || typeof element[0] !== 'string') {
      throw new TandemError('BAD_REQUEST', `invalid request: statement ${index} must be SQL text or an array of SQL text and parameters`)
    }
    const [sql, ...rest] = element as [string, ...unknown[]]
    if (sql.trim() === '') return
    statements.push({ sql, params: parameters(rest, index) })
  })
  if (statements.length === 0) throw new TandemError('BAD_REQUEST', 'no statements: every statement is empty')
  return statements
}

function parameters(values: unknown[], index: number): SqlParams {
  if (values.length === 1 && isPlainObject(values[0])) {
    // fromEntries defines each key as its own property: assigning `named[key]` would make a
    // parameter called __proto__ replace the object's prototype instead of holding a value.
    return Object.fromEntries(Object.entries(values[0]).map(([key, value]) => [key, sqlValue(value, index, key)]))
  }
  return values.map((value, i) => sqlValue(value, index, String(i + 1)))
}

function sqlValue(value: unknown, index: number, name: string): SqlParam {
  if (isSqlReal(value)) return value
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'string') {
      const blob = /^\s*[xX]'((?:[0-9a-fA-F]{2})*)'\s*$/.exec(value)
      if (blob !== null) return Buffer.from(blob[1]!, 'hex')
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TandemError('BAD_REQUEST', `parameter ${name} of statement ${index} is not a finite number`)
    }
    return value
  }
  if (typeof value === 'boolean') return value ? 1 : 0
  if (Array.isArray(value) && value.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 255)) {
    return Uint8Array.from(value as number[])
  }
  throw new TandemError(
    'BAD_REQUEST',
    `parameter ${name} of statement ${index} has an unsupported type: use null, a boolean, a number, a string, or a BLOB as "x'hex'" or an array of bytes`,
  )
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
}
