/**
 * A SQL conformance corpus, generated from a fixed seed in the spirit of sqllogictest's
 * select1–select5 files (written here, not copied): three tables of INTEGER, REAL and TEXT
 * columns with NULLs, a few hundred INSERTs, and a few thousand SELECTs of the kinds those files
 * hold: expressions with WHERE, aggregates with GROUP BY and HAVING, joins (inner, left, comma),
 * compound SELECTs (with VALUES now and then), DISTINCT, LIMIT and OFFSET, and subqueries; and a
 * few WITH queries. Some texts carry a comment or whitespace before the query, or a `;` or a
 * comment after it, as clients send them.
 *
 * Rule: every query orders by all its output columns (`ORDER BY 1, 2, …`), or is an aggregate
 * without GROUP BY (one row), so its answer is one exact sequence of rows. Rows that tie on
 * every output column hold the same values (or SQLite-equal ones, 2 and 2.0, in the order the
 * same plan gives on every node).
 *
 * The same seed writes the same corpus: a failing query is found again by its index. The test
 * runs the fixed seed's corpus on a local SQLite first, so a query SQLite refuses is named there
 * as the generator's mistake (another seed may write one: a sum of REALs cast to INTEGER near
 * 2^63 overflows, say).
 */
import { Random } from '../faults/seeded-random.ts'
import { textLiteral, type Table } from './sql-expression-writer.ts'
import { QueryWriter } from './sql-query-writer.ts'

export const corpusSeed = 1806

export const tables: readonly Table[] = [
  // select1's shape: integers only.
  { name: 't1', rowCount: 250, columns: ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, kind: 'integer' as const })) },
  {
    name: 't2',
    rowCount: 200,
    columns: [
      { name: 'a', kind: 'integer' },
      { name: 'b', kind: 'real' },
      { name: 'c', kind: 'text' },
      { name: 'd', kind: 'integer' },
      { name: 'e', kind: 'real' },
    ],
  },
  {
    name: 't3',
    rowCount: 150,
    columns: [
      { name: 'a', kind: 'text' },
      { name: 'b', kind: 'integer' },
      { name: 'c', kind: 'real' },
      { name: 'd', kind: 'text' },
      { name: 'e', kind: 'integer' },
    ],
  },
]

const indexes = ['CREATE INDEX t1_b ON t1(b)', 'CREATE INDEX t1_cd ON t1(c, d)', 'CREATE INDEX t2_c ON t2(c)', 'CREATE INDEX t3_ba ON t3(b, a)']

const textValues = [
  'alpha', 'beta', 'Gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'lambda', 'mu', 'abc', 'ABC', 'abc def', ' padded ',
  "O'Brien", 'naïve', 'Ωmega', '✓ done', '12', '3.5', '007', '', 'x',
  // Text that SQL and JSON must carry whole: a statement separator, comment markers, control characters, a character past the BMP.
  'semi;colon', '-- not a comment', '/* nor this */', 'tab\there', 'line\nbreak', 'quote"double', '😀 grin',
]

export interface SqlCorpus {
  seed: number
  /** CREATE TABLE, CREATE INDEX and one INSERT per row, in order. */
  setup: string[]
  queries: string[]
}

export function sqlCorpus(seed = corpusSeed, queryCount = 3000): SqlCorpus {
  const random = new Random(seed)
  const setup = [...tables.map(createTable), ...indexes, ...tables.flatMap((table) => insertRows(random.fork(table.name), table))]
  const writer = new QueryWriter(random.fork('queries'), tables, textValues)
  const queries = Array.from({ length: queryCount }, () => writer.query())
  return { seed, setup, queries }
}

function createTable(table: Table): string {
  return `CREATE TABLE ${table.name} (id INTEGER PRIMARY KEY, ${table.columns.map((c) => `${c.name} ${c.kind.toUpperCase()}`).join(', ')})`
}

function insertRows(random: Random, table: Table): string[] {
  return Array.from({ length: table.rowCount }, (_, i) => {
    const values = table.columns.map((column) => {
      if (random.next() < 0.1) return 'NULL'
      if (column.kind === 'text') return textLiteral(random.next() < 0.7 ? random.pick(textValues) : `${random.pick(textValues)}${random.int(0, 99)}`)
      if (column.kind === 'real') return realValue(random)
      return integerValue(random, table.name === 't2' && column.name === 'd')
    })
    return `INSERT INTO ${table.name} VALUES (${i + 1}, ${values.join(', ')})`
  })
}

/** Mostly sqllogictest's small integers; in t2.d, rarely, values past 32 and 53 bits, and text the column cannot convert. */
function integerValue(random: Random, isWide: boolean): string {
  if (isWide && random.next() < 0.06) return random.pick(['9007199254740993', '-3000000000', '2147483648', "'n/a'", "'42'", '7.0'])
  return String(random.int(-10, 240))
}

/** Eighths (exact in binary), decimals that are not, integral REALs, and small magnitudes. */
function realValue(random: Random): string {
  const r = random.next()
  if (r < 0.4) return (random.int(-800, 2000) / 8).toFixed(3)
  if (r < 0.75) return (random.int(-99_999, 99_999) / 100).toString()
  if (r < 0.9) return `${random.int(-50, 250)}.0`
  return random.pick(['1e-7', '-2.5e-5', '0.1', '0.2', '0.30000000000000004', '1.7976931348623157e10', '5'])
}
