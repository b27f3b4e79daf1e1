/**
 * Random SQLite expressions over a query's tables, for the conformance corpus (sql-corpus.ts):
 * numbers, text and conditions built from columns and literals with arithmetic, comparisons,
 * CASE, BETWEEN, IN lists, IS NULL, LIKE and GLOB, the core scalar functions, and subqueries
 * (EXISTS, IN, scalar; correlated or not), as sqllogictest's select1–select5 files write them.
 *
 * Every column is qualified by its table's alias, so a subquery that reads the same table as
 * its enclosing query is never ambiguous. Subqueries are written at the top level only: a
 * correlated subquery inside another runs once per pair of rows, and the corpus must stay fast.
 * Nothing here is nondeterministic (no random(), no time, no changes()) and nothing makes a
 * BLOB: answers are compared value for value with a local SQLite.
 */
import type { Random } from '../faults/seeded-random.ts'

export type ColumnKind = 'integer' | 'real' | 'text'

export interface Column {
  name: string
  kind: ColumnKind
}

export interface Table {
  name: string
  /** Without `id`, the INTEGER PRIMARY KEY every table has. */
  columns: readonly Column[]
  rowCount: number
}

/** A table as a query names it. */
export interface Source {
  alias: string
  table: Table
}

export interface Scope {
  sources: readonly Source[]
  /** Whether expressions may hold subqueries: never inside one, and not in every kind of query. */
  hasSubqueries: boolean
}

const words = ['alpha', 'beta', 'Gamma', 'delta', 'zeta', 'kappa', 'mu', 'abc', 'ABC', 'x', '12', '3.5', 'naïve', 'Ωmega', "O'Brien", '', 'semi;colon', '-- not a comment', '/* nor this */', 'line\nbreak']
const comparisons = ['=', '<>', '<', '<=', '>', '>=', '!=', '==']
const arithmetic = ['+', '-', '*', '/', '%']
const likePatterns = ['a%', '%a%', '_e%', '%A', 'ABC', '%', '1%', '%ta']
const globPatterns = ['*a*', '[a-m]*', '?e*', '*[0-9]*', 'A*']

/** A SQL string literal. */
export function textLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

export class ExpressionWriter {
  private readonly random: Random
  private readonly tables: readonly Table[]
  private aliasCount = 0

  constructor(random: Random, tables: readonly Table[]) {
    this.random = random
    this.tables = tables
  }

  /** Aliases count from 1 again in each query, so a query reads the same wherever it stands. */
  startQuery(): void {
    this.aliasCount = 0
  }

  /** A fresh alias for a subquery's table. */
  alias(): string {
    return `s${++this.aliasCount}`
  }

  /** A qualified column of `kind` (numeric: INTEGER or REAL, `id` included), from one of `sources`. */
  column(sources: readonly Source[], kind: 'numeric' | 'text' | 'any'): string {
    const source = this.random.pick(sources)
    const fits = source.table.columns.filter((c) => (kind === 'any' ? true : kind === 'text' ? c.kind === 'text' : c.kind !== 'text'))
    if (fits.length === 0 || (kind !== 'text' && this.random.next() < 0.08)) return `${source.alias}.id`
    return `${source.alias}.${this.random.pick(fits).name}`
  }

  integerLiteral(): string {
    return this.random.next() < 0.4 ? String(this.random.pick([0, 1, 2, 3, 5, 7, 10, 100])) : String(this.random.int(-20, 250))
  }

  /** Among them the largest magnitudes: `1e308` times a few overflows to an infinite REAL now and then, as SQLite computes it. */
  realLiteral(): string {
    return this.random.pick(['0.5', '2.5', '-1.25', '0.1', '100.0', '1e2', '3.75', '1.5e-3', '-0.0', '33.333', '1e308', '-1.7976931348623157e308'])
  }

  numericLiteral(): string {
    return this.random.next() < 0.75 ? this.integerLiteral() : this.realLiteral()
  }

  /** An expression whose value is a number (or NULL). */
  numeric(scope: Scope, depth: number): string {
    if (depth <= 0 || this.random.next() < 0.3) return this.random.next() < 0.75 ? this.column(scope.sources, 'numeric') : this.numericLiteral()
    const n = () => this.numeric(scope, depth - 1)
    const pick = this.random.int(0, scope.hasSubqueries ? 15 : 13)
    switch (pick) {
      case 0:
      case 1:
      case 2:
        // Spaces around the operator: `a - -5` must not become the comment `a--5`.
        return this.random.next() < 0.5 ? `(${n()} ${this.random.pick(arithmetic)} ${n()})` : `${n()} ${this.random.pick(arithmetic)} ${n()}`
      case 3:
        return this.random.pick([`-(${n()})`, `abs(${n()})`, `+${n()}`])
      case 4:
        return this.random.pick([`coalesce(${n()}, ${this.numericLiteral()})`, `ifnull(${n()}, ${n()})`, `nullif(${n()}, ${this.integerLiteral()})`])
      case 5:
        return this.random.pick([`round(${n()})`, `round(${n()}, ${this.random.int(0, 3)})`])
      case 6:
        return `cast(${this.random.next() < 0.8 ? n() : this.text(scope, depth - 1)} AS ${this.random.pick(['INTEGER', 'REAL', 'NUMERIC'])})`
      case 7:
        return `CASE WHEN ${this.condition(scope, depth - 1)} THEN ${n()} ${this.random.next() < 0.7 ? `ELSE ${n()} ` : ''}END`
      case 8:
        return `CASE ${n()} WHEN ${this.integerLiteral()} THEN ${n()} WHEN ${this.integerLiteral()} THEN ${n()} ELSE ${n()} END`
      case 9:
        return this.random.pick([`length(${this.text(scope, depth - 1)})`, `instr(${this.text(scope, depth - 1)}, 'a')`, `unicode(${this.text(scope, depth - 1)})`])
      case 10:
        return `${this.random.pick(['max', 'min'])}(${n()}, ${n()}${this.random.next() < 0.3 ? `, ${n()}` : ''})`
      case 11:
        // A condition is a number too: 1, 0 or NULL.
        return `(${this.condition(scope, depth - 1)})`
      case 12:
        return `iif(${this.condition(scope, depth - 1)}, ${n()}, ${n()})`
      case 13:
        return `${this.column(scope.sources, 'numeric')} ${this.random.pick(arithmetic)} ${this.numericLiteral()}`
      default:
        return this.scalarSubquery(scope)
    }
  }

  /** An expression whose value is text (or NULL). */
  text(scope: Scope, depth: number): string {
    if (depth <= 0 || this.random.next() < 0.35) return this.random.next() < 0.7 ? this.column(scope.sources, 'text') : textLiteral(this.random.pick(words))
    const t = () => this.text(scope, depth - 1)
    switch (this.random.int(0, 9)) {
      case 0:
        return this.random.pick([`upper(${t()})`, `lower(${t()})`, `trim(${t()})`, `ltrim(${t()}, 'a')`, `rtrim(${t()})`])
      case 1:
        return `substr(${t()}, ${this.random.int(-3, 4)}${this.random.next() < 0.6 ? `, ${this.random.int(0, 4)}` : ''})`
      case 2:
        return `replace(${t()}, ${textLiteral(this.random.pick(['a', 'e', 'A', '1']))}, ${textLiteral(this.random.pick(['', 'o', 'XY']))})`
      case 3:
        return `${t()} || ${this.random.next() < 0.5 ? t() : this.numeric(scope, depth - 1)}`
      case 4:
        return `typeof(${this.random.next() < 0.6 ? this.numeric(scope, depth - 1) : t()})`
      case 5:
        return `cast(${this.numeric(scope, depth - 1)} AS TEXT)`
      case 6:
        return `coalesce(${t()}, ${textLiteral(this.random.pick(words))})`
      case 7:
        return `CASE WHEN ${this.condition(scope, depth - 1)} THEN ${t()} ELSE ${t()} END`
      case 8:
        return this.random.pick([`quote(${this.numeric(scope, depth - 1)})`, `quote(${t()})`, `hex(${t()})`])
      default:
        return `printf('%s:%d', ${t()}, ${this.numeric(scope, depth - 1)})`
    }
  }

  /** A condition (1, 0 or NULL). */
  condition(scope: Scope, depth: number): string {
    const n = () => this.numeric(scope, Math.max(0, depth - 1))
    const t = () => this.text(scope, Math.max(0, depth - 1))
    const pick = this.random.int(0, scope.hasSubqueries ? 14 : 11)
    if (depth <= 0 && pick > 7) return `${n()} ${this.random.pick(comparisons)} ${n()}`
    switch (pick) {
      case 0:
      case 1:
        return `${n()} ${this.random.pick(comparisons)} ${n()}`
      case 2:
        return `${n()} ${this.random.next() < 0.3 ? 'NOT ' : ''}BETWEEN ${n()} AND ${n()}`
      case 3: {
        const list = Array.from({ length: this.random.int(1, 5) }, () => (this.random.next() < 0.1 ? 'NULL' : this.numericLiteral()))
        return `${n()} ${this.random.next() < 0.3 ? 'NOT ' : ''}IN (${list.join(', ')})`
      }
      case 4:
        return `${this.random.next() < 0.5 ? this.column(scope.sources, 'any') : n()} IS ${this.random.next() < 0.5 ? 'NOT ' : ''}NULL`
      case 5:
        return `${t()} ${this.random.pick(comparisons)} ${this.random.next() < 0.6 ? textLiteral(this.random.pick(words)) : t()}`
      case 6:
        return this.random.next() < 0.6
          ? `${t()} ${this.random.next() < 0.2 ? 'NOT ' : ''}LIKE ${textLiteral(this.random.pick(likePatterns))}`
          : `${t()} GLOB ${textLiteral(this.random.pick(globPatterns))}`
      case 7:
        return `${n()} IS ${this.random.next() < 0.5 ? 'NOT ' : ''}${n()}`
      case 8:
        return `(${this.condition(scope, depth - 1)} AND ${this.condition(scope, depth - 1)})`
      case 9:
        return `(${this.condition(scope, depth - 1)} OR ${this.condition(scope, depth - 1)})`
      case 10:
        return `NOT (${this.condition(scope, depth - 1)})`
      case 11:
        return `${t()} COLLATE NOCASE ${this.random.pick(['=', '<', '>='])} ${textLiteral(this.random.pick(words))}`
      case 12:
        return this.exists(scope)
      case 13:
        return this.inSubquery(scope)
      default:
        return `${n()} ${this.random.pick(comparisons)} ${this.scalarSubquery(scope)}`
    }
  }

  /** An aggregate over `scope`'s rows. group_concat orders its input: its order is otherwise the plan's. */
  aggregate(scope: Scope, depth: number): string {
    const n = () => this.numeric(scope, depth)
    switch (this.random.int(0, 9)) {
      case 0:
        return 'count(*)'
      case 1:
        return `count(${this.random.next() < 0.4 ? 'DISTINCT ' : ''}${this.random.next() < 0.5 ? this.column(scope.sources, 'any') : n()})`
      case 2:
        return `sum(${n()})`
      case 3:
        return `avg(${n()})`
      case 4:
        return `total(${n()})`
      case 5:
        return `min(${this.random.next() < 0.7 ? n() : this.text(scope, depth)})`
      case 6:
        return `max(${this.random.next() < 0.7 ? n() : this.text(scope, depth)})`
      case 7: {
        const value = this.random.next() < 0.6 ? this.text(scope, depth) : n()
        const ids = scope.sources.map((s) => `${s.alias}.id`).join(', ')
        return `group_concat(${value}${this.random.next() < 0.5 ? `, ${textLiteral(this.random.pick(['|', ', ', '']))}` : ''} ORDER BY ${value}, ${ids})`
      }
      case 8:
        return `${this.random.pick(['sum', 'avg', 'total', 'count'])}(DISTINCT ${this.column(scope.sources, 'numeric')})`
      default:
        return `${this.random.pick(['sum', 'max', 'min'])}(${n()}) ${this.random.pick(['+', '-', '*'])} ${this.random.pick(['count(*)', this.integerLiteral()])}`
    }
  }

  /** A subquery's table, its alias, and a condition tying it to the enclosing query (or none). */
  private inner(scope: Scope): { from: string; where: string; innerScope: Scope } {
    const source = { alias: this.alias(), table: this.random.pick(this.tables) }
    const innerScope: Scope = { sources: [source], hasSubqueries: false }
    const terms: string[] = []
    if (this.random.next() < 0.6) {
      terms.push(`${this.column([source], 'numeric')} ${this.random.pick(comparisons)} ${this.column(scope.sources, 'numeric')}`)
    }
    if (this.random.next() < 0.4) terms.push(this.condition(innerScope, 1))
    return { from: `${source.table.name} AS ${source.alias}`, where: terms.length === 0 ? '' : ` WHERE ${terms.join(' AND ')}`, innerScope }
  }

  /** A subquery of one row and one column: an aggregate, or a lookup by primary key. */
  scalarSubquery(scope: Scope): string {
    if (this.random.next() < 0.25) {
      const source = { alias: this.alias(), table: this.random.pick(this.tables) }
      return `(SELECT ${this.column([source], 'any')} FROM ${source.table.name} AS ${source.alias} WHERE ${source.alias}.id = ${this.column(scope.sources, 'numeric')})`
    }
    const { from, where, innerScope } = this.inner(scope)
    return `(SELECT ${this.aggregate(innerScope, 0)} FROM ${from}${where})`
  }

  exists(scope: Scope): string {
    const { from, where } = this.inner(scope)
    return `${this.random.next() < 0.3 ? 'NOT ' : ''}EXISTS (SELECT 1 FROM ${from}${where})`
  }

  inSubquery(scope: Scope): string {
    const { from, where, innerScope } = this.inner(scope)
    return `${this.numeric(scope, 1)} ${this.random.next() < 0.3 ? 'NOT ' : ''}IN (SELECT ${this.column(innerScope.sources, 'numeric')} FROM ${from}${where})`
  }
}
