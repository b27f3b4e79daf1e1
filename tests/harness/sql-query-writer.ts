/**
 * The queries of the conformance corpus (sql-corpus.ts), one kind at a time, each ordered by all
 * its output columns unless it is an aggregate of one row.
 */
import type { Random } from '../faults/seeded-random.ts'
import { ExpressionWriter, textLiteral, type Scope, type Source, type Table } from './sql-expression-writer.ts'

/** The kinds of query, each with its weight. */
type QueryKind = 'rows' | 'aggregate' | 'grouped' | 'join' | 'compound' | 'distinct' | 'subquery' | 'cte'

const kindWeights: [QueryKind, number][] = [
  ['rows', 26],
  ['aggregate', 10],
  ['grouped', 16],
  ['join', 16],
  ['compound', 10],
  ['distinct', 8],
  ['subquery', 14],
  ['cte', 5],
]

export class QueryWriter {
  private readonly random: Random
  private readonly tables: readonly Table[]
  /** Text values to write as literals (in VALUES rows). */
  private readonly texts: readonly string[]
  private readonly expressions: ExpressionWriter
  private aliasCount = 0

  constructor(random: Random, tables: readonly Table[], texts: readonly string[]) {
    this.random = random
    this.tables = tables
    this.texts = texts
    this.expressions = new ExpressionWriter(random, tables)
  }

  query(): string {
    this.aliasCount = 0
    this.expressions.startQuery()
    let roll = this.random.int(1, kindWeights.reduce((sum, [, weight]) => sum + weight, 0))
    const kind = kindWeights.find(([, weight]) => (roll -= weight) <= 0)![0]
    return this.framed(this.body(kind))
  }

  private body(kind: QueryKind): string {
    switch (kind) {
      case 'rows':
        return this.rows(false)
      case 'subquery':
        return this.rows(true)
      case 'aggregate':
        return this.aggregate()
      case 'grouped':
        return this.grouped()
      case 'join':
        return this.join()
      case 'compound':
        return this.compound()
      case 'cte':
        return this.cte()
      default:
        return this.distinct()
    }
  }

  /** Now and then, what a client's text holds around a query: a comment or whitespace first, a `;` or a comment after. */
  private framed(sql: string): string {
    const r = this.random.next()
    if (r < 0.02) return `/* query */ ${sql}`
    if (r < 0.04) return `\n  ${sql}`
    if (r < 0.06) return `${sql};`
    if (r < 0.08) return `${sql} -- the end`
    return sql
  }

  private source(table = this.random.pick(this.tables)): Source {
    // Half the queries name the table itself, as sqllogictest does; the rest alias it.
    return this.random.next() < 0.5 ? { alias: table.name, table } : { alias: `x${++this.aliasCount}`, table }
  }

  private from(sources: readonly Source[]): string {
    return sources.map((s) => (s.alias === s.table.name ? s.table.name : `${s.table.name} AS ${s.alias}`)).join(', ')
  }

  /** An output column: a number, text, or a condition. */
  private output(scope: Scope, depth: number): string {
    const r = this.random.next()
    if (r < 0.6) return this.expressions.numeric(scope, depth)
    if (r < 0.85) return this.expressions.text(scope, depth)
    return this.expressions.condition(scope, depth)
  }

  private orderBy(count: number): string {
    const terms = Array.from({ length: count }, (_, i) => {
      const r = this.random.next()
      return `${i + 1}${r < 0.2 ? ' DESC' : r < 0.25 ? ' NULLS LAST' : r < 0.3 ? ' DESC NULLS FIRST' : ''}`
    })
    return ` ORDER BY ${terms.join(', ')}`
  }

  private limit(chance: number): string {
    if (this.random.next() >= chance) return ''
    return ` LIMIT ${this.random.int(1, 30)}${this.random.next() < 0.5 ? ` OFFSET ${this.random.int(0, 20)}` : ''}`
  }

  /** select1 and select2's shape: expressions over one table with a WHERE; with subqueries, select3's. */
  private rows(withSubqueries: boolean): string {
    const sources = [this.source()]
    const scope: Scope = { sources, hasSubqueries: withSubqueries }
    const outputs = Array.from({ length: this.random.int(1, 4) }, () => this.output(scope, this.random.int(0, 3)))
    const where = this.random.next() < 0.75 ? ` WHERE ${this.expressions.condition(scope, this.random.int(1, 3))}` : ''
    return `SELECT ${outputs.join(', ')} FROM ${this.from(sources)}${where}${this.orderBy(outputs.length)}${this.limit(0.2)}`
  }

  /** Aggregates without GROUP BY: exactly one row, so no ORDER BY. */
  private aggregate(): string {
    const sources = [this.source()]
    const scope: Scope = { sources, hasSubqueries: false }
    const outputs = Array.from({ length: this.random.int(1, 4) }, () => this.expressions.aggregate(scope, this.random.int(0, 2)))
    const where = this.random.next() < 0.6 ? ` WHERE ${this.expressions.condition({ sources, hasSubqueries: true }, 2)}` : ''
    return `SELECT ${outputs.join(', ')} FROM ${this.from(sources)}${where}`
  }

  /** GROUP BY over small domains, with HAVING; over a join now and then. */
  private grouped(): string {
    const sources = this.random.next() < 0.25 ? this.joinedPair() : [this.source()]
    const scope: Scope = { sources, hasSubqueries: false }
    const keys = Array.from({ length: this.random.int(1, 2) }, () => this.groupKey(scope))
    const aggregates = Array.from({ length: this.random.int(1, 3) }, () => this.expressions.aggregate(scope, this.random.int(0, 2)))
    const where = this.random.next() < 0.5 ? ` WHERE ${this.expressions.condition(scope, 1)}` : ''
    const having = this.random.next() < 0.4 ? ` HAVING ${this.expressions.aggregate(scope, 0)} ${this.random.pick(['>', '<', '>=', '<>'])} ${this.expressions.integerLiteral()}` : ''
    const outputs = [...keys, ...aggregates]
    const joined = sources.length === 2 ? this.joinClause(sources) : this.from(sources)
    return `SELECT ${outputs.join(', ')} FROM ${joined}${where} GROUP BY ${keys.map((_, i) => i + 1).join(', ')}${having}${this.orderBy(outputs.length)}${this.limit(0.15)}`
  }

  private groupKey(scope: Scope): string {
    const numeric = this.expressions.column(scope.sources, 'numeric')
    return this.random.pick([
      `${numeric} % ${this.random.int(2, 9)}`,
      this.expressions.column(scope.sources, 'text'),
      `typeof(${this.expressions.column(scope.sources, 'any')})`,
      `${numeric} IS NULL`,
      `CASE WHEN ${numeric} > ${this.expressions.integerLiteral()} THEN 'high' ELSE 'low' END`,
      `length(${this.expressions.column(scope.sources, 'text')})`,
      `cast(${numeric} / 50 AS INTEGER)`,
    ])
  }

  /** Two tables (maybe the same one twice), each aliased. */
  private joinedPair(): Source[] {
    return [{ alias: `x${++this.aliasCount}`, table: this.random.pick(this.tables) }, { alias: `y${++this.aliasCount}`, table: this.random.pick(this.tables) }]
  }

  /** `a JOIN b ON …` or `a LEFT JOIN b ON …`, on an integer column or a primary key. */
  private joinClause(sources: readonly Source[]): string {
    const [left, right] = sources as [Source, Source]
    const on = this.random.next() < 0.5
      ? `${this.expressions.column([right], 'numeric')} = ${this.expressions.column([left], 'numeric')}`
      : `${right.alias}.id = ${this.expressions.column([left], 'numeric')}`
    return `${left.table.name} AS ${left.alias} ${this.random.pick(['JOIN', 'INNER JOIN', 'LEFT JOIN', 'LEFT OUTER JOIN'])} ${right.table.name} AS ${right.alias} ON ${on}`
  }

  /** Joins, select4 and select5's shape: two or three tables, by ON or by equalities in WHERE. */
  private join(): string {
    const sources = this.joinedPair()
    let from = this.joinClause(sources)
    const terms: string[] = []
    if (this.random.next() < 0.35) {
      const third: Source = { alias: `z${++this.aliasCount}`, table: this.random.pick(this.tables) }
      if (this.random.next() < 0.5) {
        from += ` LEFT JOIN ${third.table.name} AS ${third.alias} ON ${third.alias}.id = ${this.expressions.column(sources, 'numeric')}`
      } else {
        from = `${this.from(sources)}, ${third.table.name} AS ${third.alias}`
        terms.push(`${sources[1]!.alias}.id = ${this.expressions.column([sources[0]!], 'numeric')}`, `${third.alias}.id = ${this.expressions.column(sources, 'numeric')}`)
      }
      sources.push(third)
    }
    const scope: Scope = { sources, hasSubqueries: false }
    if (this.random.next() < 0.6) terms.push(this.expressions.condition(scope, 2))
    const outputs = Array.from({ length: this.random.int(1, 4) }, () => this.output(scope, this.random.int(0, 2)))
    const where = terms.length === 0 ? '' : ` WHERE ${terms.join(' AND ')}`
    return `SELECT ${outputs.join(', ')} FROM ${from}${where}${this.orderBy(outputs.length)}${this.limit(0.4)}`
  }

  /** UNION, UNION ALL, EXCEPT and INTERSECT of two or three SELECTs over small domains, so they overlap. */
  private compound(): string {
    const width = this.random.int(1, 2)
    const parts = Array.from({ length: this.random.next() < 0.25 ? 3 : 2 }, () => {
      const sources = [this.source()]
      const scope: Scope = { sources, hasSubqueries: false }
      const outputs = Array.from({ length: width }, () => {
        const r = this.random.next()
        if (r < 0.5) return `${this.expressions.column(sources, 'numeric')} % ${this.random.int(3, 12)}`
        if (r < 0.7) return this.expressions.column(sources, 'any')
        return this.output(scope, 1)
      })
      const where = this.random.next() < 0.6 ? ` WHERE ${this.expressions.condition(scope, 1)}` : ''
      return `SELECT ${outputs.join(', ')} FROM ${this.from(sources)}${where}`
    })
    if (this.random.next() < 0.15) {
      const row = () => `(${Array.from({ length: width }, () => (this.random.next() < 0.3 ? textLiteral(this.random.pick(this.texts)) : this.random.next() < 0.1 ? 'NULL' : this.expressions.numericLiteral())).join(', ')})`
      // First: SQLite takes no ORDER BY right after a VALUES clause.
      parts.unshift(`VALUES ${Array.from({ length: this.random.int(1, 3) }, row).join(', ')}`)
    }
    const joined = parts.reduce((sql, part) => `${sql} ${this.random.pick(['UNION', 'UNION ALL', 'EXCEPT', 'INTERSECT'])} ${part}`)
    return `${joined}${this.orderBy(width)}${this.limit(0.25)}`
  }

  /** WITH: a SELECT named and read again (grouped, or filtered), or a recursive count joined with a table. */
  private cte(): string {
    if (this.random.next() < 0.4) {
      const table = this.random.pick(this.tables)
      const x: Source = { alias: 'x', table }
      const scope: Scope = { sources: [x], hasSubqueries: false }
      const where = this.random.next() < 0.4 ? ` WHERE ${this.expressions.condition(scope, 1)}` : ''
      const count = `WITH RECURSIVE n(i) AS (SELECT ${this.random.int(0, 3)} UNION ALL SELECT i + ${this.random.int(1, 7)} FROM n WHERE i < ${this.random.int(5, 60)})`
      return `${count} SELECT n.i, ${this.output(scope, 1)} FROM n LEFT JOIN ${table.name} AS x ON x.id = n.i${where}${this.orderBy(2)}`
    }
    const sources = [this.source()]
    const scope: Scope = { sources, hasSubqueries: false }
    const where = this.random.next() < 0.5 ? ` WHERE ${this.expressions.condition(scope, 1)}` : ''
    const named = `WITH c(id, k, v) AS (SELECT ${sources[0]!.alias}.id, ${this.expressions.numeric(scope, 1)}, ${this.output(scope, 1)} FROM ${this.from(sources)}${where})`
    const c: Source = { alias: 'c', table: { name: 'c', rowCount: 0, columns: [{ name: 'k', kind: 'integer' }, { name: 'v', kind: 'text' }] } }
    const cScope: Scope = { sources: [c], hasSubqueries: false }
    if (this.random.next() < 0.5) {
      const outputs = [this.groupKey(cScope), this.expressions.aggregate(cScope, 1)]
      return `${named} SELECT ${outputs.join(', ')} FROM c GROUP BY 1${this.orderBy(2)}`
    }
    const outputs = Array.from({ length: this.random.int(1, 3) }, () => this.output(cScope, 1))
    return `${named} SELECT ${outputs.join(', ')} FROM c WHERE ${this.expressions.condition(cScope, 1)}${this.orderBy(outputs.length)}${this.limit(0.3)}`
  }

  private distinct(): string {
    const sources = [this.source()]
    const scope: Scope = { sources, hasSubqueries: false }
    const outputs = Array.from({ length: this.random.int(1, 3) }, () =>
      this.random.next() < 0.5 ? this.groupKey(scope) : this.output(scope, this.random.int(0, 1)),
    )
    const where = this.random.next() < 0.5 ? ` WHERE ${this.expressions.condition({ sources, hasSubqueries: true }, 2)}` : ''
    return `SELECT DISTINCT ${outputs.join(', ')} FROM ${this.from(sources)}${where}${this.orderBy(outputs.length)}${this.limit(0.4)}`
  }
}
