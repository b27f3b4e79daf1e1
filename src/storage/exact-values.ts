/**
 * Parameters bound exactly. Tandem's own SQLite (sqlite.ts) binds every value exactly as given:
 * a number that is an integer a double holds exactly as an INTEGER, any other number as a REAL, a
 * SqlReal as a REAL, text by its length. With it, nothing below applies and every statement runs
 * as written. On the published binding (the fallback) it does. That binding binds a JS number that has (nearly) no fraction and fits
 * in 32 bits as an INTEGER, and every other number as a REAL. So `1e-20` became INTEGER 0 (its
 * fraction is below 2^-52), a REAL the client wrote as `1.0` became INTEGER 1, and the integer
 * 3000000000 became a REAL. Tandem binds instead:
 *
 * - an integer past 32 bits as a bigint: an INTEGER, exact to 64 bits;
 * - a REAL the binding would make an INTEGER (a SqlReal, or a number below the binding's
 *   threshold) as its shortest decimal text, with its parameter written `(? * 1.0)` in the
 *   statement: SQLite turns that text into exactly the double it came from (its text-to-REAL
 *   conversion is correctly rounded), and an expression has no affinity, as a bound value has
 *   none.
 *
 * - a string holding a NUL character as its UTF-8 bytes, with its parameter written `(? || '')`:
 *   the binding binds text up to its first NUL, and the rest was lost; concatenation makes the
 *   bytes TEXT again, whole, again without affinity. (Reading such text back through the binding
 *   still stops at the NUL: a known limit.)
 *
 * A statement whose parameters need none of this runs as written, with its values as given.
 */
import { parameterTokens } from './sql-tokens.ts'
import { engine, type SqlParam, type SqlParams, type SqlReal } from './sqlite.ts'

const isExact = engine.exactBinding

const int32Min = -(2 ** 31)
const int32Max = 2 ** 31 - 1

/** A REAL whose value is integral (`1.0`, `1e3`): a plain number would be bound as an INTEGER. */
export function sqlReal(value: number): SqlReal {
  return Float64Array.of(value)
}

export function isSqlReal(value: unknown): value is SqlReal {
  return value instanceof Float64Array
}

/** Would the binding bind this REAL as an INTEGER? (its rule: sqlite_impl.cpp, BindValue) */
function bindsAsInteger(value: number): boolean {
  return value >= int32Min && value <= int32Max && Math.abs(value - Math.floor(value)) < Number.EPSILON
}

/** The expression this parameter is written in, when it needs one. */
function castOf(value: SqlParam): ((parameter: string) => string) | undefined {
  if (typeof value === 'number') return !Number.isInteger(value) && bindsAsInteger(value) ? asReal : undefined
  if (typeof value === 'string') return value.includes('\u0000') ? asText : undefined
  return isSqlReal(value) && bindsAsInteger(value[0]!) ? asReal : undefined
}

const asReal = (parameter: string) => `(${parameter} * 1.0)`
const asText = (parameter: string) => `(${parameter} || '')`

function needsCast(value: SqlParam): boolean {
  return castOf(value) !== undefined
}

/** The text SQLite reads back as exactly this double. */
function realText(value: number): string {
  return Object.is(value, -0) ? '-0.0' : String(value)
}

/** The value the binding is given for one parameter; `exact`: the engine binds exactly itself. */
export function bindable(value: SqlParam, exact = isExact): unknown {
  if (exact) return value
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return (value < int32Min || value > int32Max) && Number.isSafeInteger(value) ? BigInt(value) : value
    return bindsAsInteger(value) ? realText(value) : value
  }
  if (isSqlReal(value)) return bindsAsInteger(value[0]!) ? realText(value[0]!) : value[0]
  if (typeof value === 'string' && value.includes('\u0000')) return Buffer.from(value, 'utf8')
  return value
}

/** What the binding is given for a statement's parameters. */
export function bindableArgs(params: SqlParams | undefined): unknown[] {
  if (params === undefined) return []
  if (Array.isArray(params)) return (params as readonly SqlParam[]).map((value) => bindable(value))
  const named: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(params)) named[key] = bindable(value)
  return [named]
}

function anyNeedsCast(params: SqlParams): boolean {
  return Array.isArray(params) ? (params as readonly SqlParam[]).some(needsCast) : Object.values(params).some(needsCast)
}

/**
 * `sql` with each parameter that `params` gives a cast REAL written `(? * 1.0)` (numbered as
 * SQLite numbers them: sql-tokens.ts); `sql` itself when there is none, the common case.
 */
export function castSql(sql: string, params: SqlParams | undefined, exact = isExact): string {
  if (exact || params === undefined || !anyNeedsCast(params)) return sql
  const positional = Array.isArray(params) ? (params as readonly SqlParam[]) : undefined
  const named = positional === undefined ? (params as Readonly<Record<string, SqlParam>>) : undefined
  let out = ''
  let copied = 0
  for (const token of parameterTokens(sql)) {
    const value = positional !== undefined ? positional[token.index - 1] : named![token.text] ?? named![token.text.slice(1)]
    const cast = value === undefined ? undefined : castOf(value)
    if (cast === undefined) continue
    out += `${sql.slice(copied, token.start)}${cast(token.text)}`
    copied = token.start + token.text.length
  }
  return out + sql.slice(copied)
}

/**
 * A column name as the client wrote it: SQLite names an expression column after its text, so
 * `SELECT ?` run with a cast REAL would answer a column called `(? * 1.0)`.
 */
export function uncastName(name: string): string {
  return name.includes(' * 1.0)') || name.includes(" || '')") ? name.replace(/\((\?\d*|[:@$][^\s()]+) (?:\* 1\.0|\|\| '')\)/g, '$1') : name
}
