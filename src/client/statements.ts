/**
 * Statements and their parameters, encoded as rqlite request bodies: `"SQL"`, `["SQL ?", 1, 2]`
 * (positional) or `["SQL :a", {"a": 1}]` (named). Values are checked here, before anything is
 * sent, so a bad parameter fails the call with BAD_REQUEST and never reaches a node.
 */
import { TandemClientError } from './client-errors.ts'

/** A value a statement can bind. Booleans bind as 1 and 0; BLOBs as Uint8Array (or Buffer). */
export type SqlValue = null | boolean | number | bigint | string | Uint8Array

/** Positional (`?`) or named (`:name`, `@name`, `$name`) parameters. */
export type Params = readonly SqlValue[] | { readonly [name: string]: SqlValue }

/** SQL text, or SQL text with its parameters. */
export type Statement = string | { readonly sql: string; readonly params?: Params }

/** One element of an rqlite request body. */
export type EncodedStatement = string | [string, ...unknown[]]

export function statementOf(sql: string, params: Params | undefined): Statement {
  return params === undefined ? sql : { sql, params }
}

export function encodeStatements(statements: readonly Statement[]): EncodedStatement[] {
  return statements.map((statement, index) => {
    if (typeof statement === 'string') return statement
    if (typeof statement !== 'object' || statement === null || typeof statement.sql !== 'string') {
      throw new TandemClientError('BAD_REQUEST', `statement ${index} must be SQL text or { sql, params }`)
    }
    const { sql, params } = statement
    if (params === undefined) return sql
    if (isPositional(params)) return [sql, ...params.map((value, i) => encodeValue(value, index, String(i + 1)))]
    if (typeof params !== 'object' || params === null) {
      throw new TandemClientError('BAD_REQUEST', `the parameters of statement ${index} must be an array or an object`)
    }
    const named: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(params)) named[name] = encodeValue(value, index, name)
    return [sql, named]
  })
}

function isPositional(params: Params): params is readonly SqlValue[] {
  return Array.isArray(params)
}

function encodeValue(value: unknown, index: number, name: string): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'bigint') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TandemClientError('BAD_REQUEST', `parameter ${name} of statement ${index} is not a finite number`)
    return value
  }
  // rqlite's BLOB form: two hex digits a byte, half the size of its byte-array form.
  if (value instanceof Uint8Array) return `x'${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}'`
  throw new TandemClientError(
    'BAD_REQUEST',
    `parameter ${name} of statement ${index} is ${value === undefined ? 'undefined' : `a ${typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value}`}: use null, a boolean, a number, a bigint, a string or a Uint8Array`,
  )
}
