import { TandemError } from '../shared/errors.ts'
import { parametersOf, type ParameterSpec } from './sql-tokens.ts'
import type { SqlParams, Statement } from './sqlite.ts'

/**
 * Parameters must match what a statement takes. The binding binds a parameter it was given no
 * value for as NULL, so `["INSERT INTO t VALUES (?, ?)", 1]` would store a NULL the client never
 * sent; rqlite (Go's database/sql) answers such a statement with an error, and so does Tandem.
 * Extra named values are ignored, as rqlite ignores them; extra positional values are an error.
 */
const specs = new WeakMap<Statement, ParameterSpec>()

/** Learns a client statement's parameters from its text, once per prepared statement. */
export function learnParameters(statement: Statement, sql: string): void {
  if (!specs.has(statement)) specs.set(statement, parametersOf(sql))
}

/** Throws BAD_REQUEST (a per-statement error) when `params` do not fit a learned statement. */
export function checkParameters(statement: Statement, params: SqlParams | undefined): void {
  const spec = specs.get(statement)
  if (spec === undefined) return
  const mismatch = mismatchOf(spec, params)
  if (mismatch !== undefined) throw new TandemError('BAD_REQUEST', mismatch)
}

function mismatchOf(spec: ParameterSpec, params: SqlParams | undefined): string | undefined {
  if (params === undefined || Array.isArray(params)) {
    const given = params === undefined ? 0 : (params as readonly unknown[]).length
    // The binding binds a list to unnamed parameters only.
    if (spec.names.size > 0 && given > 0) return `the statement has named parameters (${[...spec.names][0]}) but a list of values was given: send the values as an object`
    if (given === spec.count) return undefined
    return `the statement takes ${plural(spec.count, 'parameter')} but ${given === 0 ? 'none were' : given === 1 ? '1 was' : `${given} were`} given: every parameter needs a value (a missing one is not NULL)`
  }
  if (spec.hasNumbered) return 'the statement has positional parameters (?) but named values were given: send the values as a list'
  const named = params as Readonly<Record<string, unknown>>
  for (const name of spec.names) {
    if (!Object.hasOwn(named, name) && !Object.hasOwn(named, name.slice(1))) {
      return `no value was given for the named parameter ${name}: every parameter needs a value (a missing one is not NULL)`
    }
  }
  return undefined
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
