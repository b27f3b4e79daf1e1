/**
 * SQL conformance (issue 18, part 6): a seeded corpus in sqllogictest's spirit (sql-corpus.ts)
 * is loaded through the master's HTTP API and into a local SQLite file, and each of its queries
 * is asked of the master (level=weak) and of a replica (level=none) in batches. Every answer must
 * be the local connection's: the same columns, types, rows in the same order, and exact values
 * (sql-answers.ts). A difference names the query, the node's value and SQLite's.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'lossless-json'
import { openConnection, type Connection } from '../../src/storage/sqlite.ts'
import { Cluster } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'
import { sqlCorpus } from '../harness/sql-corpus.ts'
import { differences, localAnswer, type Answer, type NodeResult } from '../harness/sql-answers.ts'

/** Statements per POST /db/execute while loading. */
const loadBatchSize = 200
/** Queries per POST /db/query. */
const queryBatchSize = 100
/** Every this many queries, one is also sent alone (twice). */
const singleQueryStride = 10
/** Differences listed in a failure; the count says how many there were in all. */
const shownMax = 25

describe('SQL conformance: every node answers the corpus exactly as SQLite does', () => {
  const corpus = sqlCorpus()
  let cluster: Cluster
  let dir: string
  let local: Connection
  /** SQLite's answer to each query, by index. */
  let expected: Answer[] = []

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    dir = mkdtempSync(join(tmpdir(), 'tandem-conformance-'))
    local = openConnection(join(dir, 'local.db'))
  })
  after(async () => {
    local?.close()
    await cluster?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  test('the tables and rows load on the master in batches, and the replica converges', async (t) => {
    const started = performance.now()
    for (let start = 0; start < corpus.setup.length; start += loadBatchSize) {
      const batch = corpus.setup.slice(start, start + loadBatchSize)
      const answer = await call('POST', `${cluster.master.url}/db/execute`, batch)
      assert.equal(answer.status, 200, answer.text)
      const failed = (answer.json.results as { error?: string }[]).flatMap((r, i) => (r.error === undefined ? [] : [`${batch[i]}: ${r.error}`]))
      assert.deepEqual(failed, [])
      // One transaction per batch: the local copy need not pay a sync per row.
      local.exec('BEGIN')
      for (const statement of batch) local.exec(statement)
      local.exec('COMMIT')
    }
    // The corpus is valid SQLite: a query that fails here is a mistake in the generator.
    expected = corpus.queries.map((sql, i) => {
      try {
        return localAnswer(local, sql)
      } catch (error) {
        throw new Error(`query ${i} of seed ${corpus.seed} is not valid SQLite: ${sql}`, { cause: error })
      }
    })
    const answered = performance.now()
    await cluster.converged()
    t.diagnostic(`${Math.round(answered - started)} ms; ${corpus.setup.length} statements loaded; ${expected.reduce((sum, a) => sum + a.rows.length, 0)} rows expected over ${corpus.queries.length} queries`)
  })

  /** The node's query URL: the master at its default level (weak), the replica at none. */
  function queryUrl(where: 'master' | 'replica'): string {
    return where === 'master' ? `${cluster.master.url}/db/query` : `${cluster.replicas[0]!.url}/db/query?level=none`
  }

  /** Compares the node's result for query `index` with SQLite's; a difference is added to `found`. */
  function compare(found: string[], index: number, result: NodeResult | undefined): void {
    const lines = differences(expected[index]!, result)
    if (lines.length > 0) found.push(`query ${index}: ${corpus.queries[index]}\n    ${lines.join('\n    ')}`)
  }

  async function inlineReads(nodeUrl: string): Promise<number> {
    return Number((await call('GET', `${nodeUrl}/status`)).json.reads.inline)
  }

  function assertNoneDiffer(found: string[], compared: number, where: string): void {
    assert.ok(found.length === 0, `${found.length} of ${compared} answers from the ${where} differ from SQLite's (seed ${corpus.seed}):\n${found.slice(0, shownMax).join('\n')}`)
  }

  for (const where of ['master', 'replica'] as const) {
    test(`the ${where} answers every query, in batches, with SQLite's columns, types, rows and exact values`, async (t) => {
      assert.equal(expected.length, corpus.queries.length, 'the corpus loaded')
      const found: string[] = []
      let compared = 0
      const started = performance.now()
      for (let start = 0; start < corpus.queries.length; start += queryBatchSize) {
        const batch = corpus.queries.slice(start, start + queryBatchSize)
        const answer = await call('POST', queryUrl(where), batch)
        assert.equal(answer.status, 200, answer.text.slice(0, 2000))
        const results = (parse(answer.text) as { results: NodeResult[] }).results
        assert.equal(results.length, batch.length, `queries ${start}–${start + batch.length - 1}: ${results.length} results`)
        batch.forEach((_, i) => compare(found, start + i, results[i]))
        compared += batch.length
      }
      t.diagnostic(`${compared} queries compared on the ${where} in ${Math.round(performance.now() - started)} ms`)
      assert.equal(compared, corpus.queries.length)
      assertNoneDiffer(found, compared, where)
    })

    test(`the ${where} answers a query sent alone by GET (its fast path) the same, twice over`, async (t) => {
      assert.equal(expected.length, corpus.queries.length, 'the corpus loaded')
      const url = queryUrl(where)
      const node = where === 'master' ? cluster.master : cluster.replicas[0]!
      const inlineBefore = await inlineReads(node.url)
      const found: string[] = []
      let compared = 0
      for (let index = 0; index < corpus.queries.length; index += singleQueryStride) {
        for (let run = 0; run < 2; run++) {
          const answer = await call('GET', `${url}${url.includes('?') ? '&' : '?'}q=${encodeURIComponent(corpus.queries[index]!)}`)
          assert.equal(answer.status, 200, answer.text.slice(0, 2000))
          compare(found, index, (parse(answer.text) as { results: NodeResult[] }).results[0])
          compared++
        }
      }
      // A second run of a read known to be cheap runs on the main thread; which are is timing: said, not asserted.
      t.diagnostic(`${compared} single queries compared on the ${where}; ${(await inlineReads(node.url)) - inlineBefore} ran inline`)
      assertNoneDiffer(found, compared, where)
    })
  }
})
