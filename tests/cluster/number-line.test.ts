/**
 * The number line, exactly (issue 18): every kind of number SQLite holds goes in through each
 * request form and comes back with its storage class and its exact value from the master, a
 * replica (through replication), the TypeScript client and the embedded replica. Before,
 * `1e-20` and `5e-324` were stored as INTEGER 0, `1.0` as INTEGER 1, 3000000000 as a REAL, and
 * an integral REAL was typed "integer" in answers.
 *
 * A JSON number is bound as rqlite binds it: written with a fraction or an exponent it is a REAL
 * (even `1.0`); otherwise an INTEGER when it fits 64 bits, else a REAL.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isLosslessNumber, parse } from 'lossless-json'
import { openReplica, type EmbeddedReplica } from '../../src/index.ts'
import { connect, type TandemClient } from '../../src/client/index.ts'
import { silentLogger } from '../../src/shared/logger.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'

/** JSON number literals, as a client writes them. */
const literals = [
  // Integers: 32-bit edges, 2^53 edges, 64-bit edges, and past 64 bits (a REAL, as in rqlite).
  '0', '1', '-1', '2147483647', '2147483648', '-2147483648', '-2147483649', '3000000000', '4294967296',
  '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993',
  '9223372036854775807', '-9223372036854775808', '9223372036854775808', '18446744073709551616',
  // REALs: integral ones, subnormals, the normal edge, tiny and huge, negative zero, fractions.
  '1.0', '-1.0', '0.0', '-0.0', '1e3', '1E3', '1e0', '2147483647.0', '2147483648.0', '3000000000.0', '9007199254740993.0', '1e20', '1.5e300',
  '5e-324', '4.9406564584124654e-324', '1e-320', '2.225073858507201e-308', '2.2250738585072014e-308',
  '1e-20', '1e-100', '1e-300', '-1e-300', '-5e-324', '1e-7', '0.000001', '0.1', '-0.9999999999999999', '0.9999999999999999',
  '2.5', '-2.5', '1.7976931348623157e308', '-1.7976931348623157e308', '2147483648.5', '123456789.123456789',
]

type Expected = { kind: 'integer'; value: bigint } | { kind: 'real'; value: number }

function expected(literal: string): Expected {
  if (/[.eE]/.test(literal)) return { kind: 'real', value: Number(literal) }
  const value = BigInt(literal)
  return value >= -(2n ** 63n) && value < 2n ** 63n ? { kind: 'integer', value } : { kind: 'real', value: Number(literal) }
}

/** An answer's number, exactly: integers as bigints, the rest as numbers. */
function exact(value: unknown): number | bigint {
  if (typeof value === 'bigint' || typeof value === 'number') return value
  assert.ok(isLosslessNumber(value), `not a number: ${String(value)}`)
  return /[.eE]/.test(value.value) ? Number(value.value) : BigInt(value.value)
}

/** Whether `got` is the expected value: the same double bit for bit (but for the sign of zero, which JSON drops), or the same integer. */
function sameValue(got: number | bigint, want: Expected): boolean {
  if (want.kind === 'integer') return BigInt(got) === want.value
  return typeof got === 'bigint' ? Number(got) === want.value && Number.isInteger(want.value) : got === want.value || (Number.isNaN(got) && Number.isNaN(want.value))
}

describe('the number line', () => {
  let cluster: Cluster
  let client: TandemClient
  let embedded: EmbeddedReplica
  let dir: string
  /** literal → the id of its row, for each way it went in. */
  const rowsOf = new Map<string, number[]>()

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    dir = mkdtempSync(join(tmpdir(), 'tandem-numbers-'))
    const created = await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE n (id INTEGER PRIMARY KEY, literal TEXT, form TEXT, x)'])
    assert.equal(created.status, 200, created.text)
    client = await connect([cluster.master.url], { timeoutMs: 10_000 })
  })
  after(async () => {
    await client?.close()
    await embedded?.close()
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('every literal goes in positional and named, in one request each, and each is stored with its class', async () => {
    for (const literal of literals) {
      // Written by hand: JSON.stringify cannot write 1.0, and rounds integers past 2^53.
      const body = `[["INSERT INTO n(literal, form, x) VALUES (?, 'positional', ?)", ${JSON.stringify(literal)}, ${literal}], ["INSERT INTO n(literal, form, x) VALUES (:l, 'named', :x)", {"l": ${JSON.stringify(literal)}, "x": ${literal}}]]`
      const answer = await call('POST', `${cluster.master.url}/db/execute`, body)
      assert.equal(answer.status, 200, `${literal}: ${answer.text}`)
      const results = answer.json.results as { error?: string; last_insert_id: number }[]
      assert.deepEqual(results.map((r) => r.error), [undefined, undefined], `${literal}: ${answer.text}`)
      rowsOf.set(literal, results.map((r) => r.last_insert_id))
    }
  })

  for (const where of ['master', 'replica'] as const) {
    test(`the ${where} answers each value with its class as the type and its exact value`, async () => {
      const node = where === 'master' ? cluster.master : cluster.replicas[0]!
      if (where === 'replica') await cluster.converged()
      const answer = await call('POST', `${node.url}/db/query?level=none`, ['SELECT id, literal, x, typeof(x) FROM n ORDER BY id'])
      assert.equal(answer.status, 200, answer.text)
      const result = (parse(answer.text) as { results: { values: unknown[][] }[] }).results[0]!
      assert.equal(result.values.length, literals.length * 2)
      for (const [, literal, x, storageClass] of result.values) {
        const want = expected(literal as string)
        assert.equal(storageClass, want.kind, `${String(literal)}: stored as ${String(storageClass)}`)
        assert.ok(sameValue(exact(x), want), `${String(literal)}: answered ${String((x as { value?: string }).value ?? x)}, want ${String(want.value)}`)
      }
      // One row at a time: x has no declared type, so the first row's class is its type (rqlite's rule).
      for (const literal of literals) {
        const one = await call('POST', `${node.url}/db/query?level=none`, [['SELECT x, x + 0 AS y FROM n WHERE literal = ? LIMIT 1', literal]])
        const want = expected(literal)
        assert.deepEqual(one.json.results[0].types, [want.kind, want.kind], `${literal}: ${one.text}`)
      }
    })
  }

  test('a read binds each literal exactly too: SELECT ? answers what it was given, typed by its class', async () => {
    for (const literal of literals) {
      const answer = await call('POST', `${cluster.replicas[0]!.url}/db/query?level=none`, `[["SELECT ?, typeof(?1)", ${literal}]]`)
      assert.equal(answer.status, 200, answer.text)
      const result = (parse(answer.text) as { results: { columns: string[]; types: string[]; values: unknown[][] }[] }).results[0]!
      const want = expected(literal)
      assert.deepEqual(result.columns, ['?', 'typeof(?1)'], `${literal}: the column is named as written`)
      assert.equal(result.values[0]![1], want.kind, literal)
      assert.equal(result.types[0], want.kind, literal)
      assert.ok(sameValue(exact(result.values[0]![0]), want), `${literal}: ${answer.text}`)
    }
  })

  test('the TypeScript client writes and reads numbers and bigints exactly', async () => {
    const values: (number | bigint)[] = [1e-20, 5e-324, -1e-300, 0.1, 2.5, 1.7976931348623157e308, 3_000_000_000, 2 ** 31, -(2 ** 31) - 1, 2n ** 63n - 1n, -(2n ** 63n), 9007199254740993n]
    for (const value of values) {
      const written = await client.execute("INSERT INTO n(literal, form, x) VALUES ('client', 'client', ?)", [value])
      const [row] = await client.query<{ x: number | bigint; c: string }>('SELECT x, typeof(x) AS c FROM n WHERE id = ?', [written.lastInsertId])
      const kind = typeof value === 'bigint' || Number.isSafeInteger(value) ? 'integer' : 'real'
      assert.equal(row!.c, kind, `${String(value)}`)
      assert.ok(typeof value === 'bigint' ? BigInt(row!.x) === value : row!.x === value, `${String(value)} came back as ${String(row!.x)}`)
    }
  })

  test('the embedded replica holds the same values, and binds its own parameters exactly', async () => {
    embedded = await openReplica({ master: cluster.master.url, path: join(dir, 'embedded'), logger: silentLogger })
    const status = await call('GET', `${cluster.master.url}/status`)
    await embedded.waitFor(status.json.position.lsn)
    for (const literal of literals) {
      const want = expected(literal)
      for (const id of rowsOf.get(literal)!) {
        const row = embedded.get<{ x: number | bigint; c: string }>('SELECT x, typeof(x) AS c FROM n WHERE id = ?', [id])
        assert.equal(row?.c, want.kind, literal)
        assert.ok(sameValue(row.x, want), `${literal}: the embedded replica read ${String(row.x)}`)
      }
    }
    for (const value of [1e-20, 5e-324, -0.9999999999999999, 3_000_000_000]) {
      const row = embedded.get<{ v: number | bigint; c: string }>('SELECT ? AS v, typeof(?1) AS c', [value])
      assert.equal(row?.c, Number.isInteger(value) ? 'integer' : 'real', String(value))
      assert.equal(Number(row.v), value)
    }
  })

  test('±Infinity and -0.0 are answered as themselves (1e999, -1e999, -0), not as null and 0', async () => {
    for (const node of [cluster.master, cluster.replicas[0]!]) {
      const answer = await call('POST', `${node.url}/db/query?level=none`, ['SELECT 1e999, -1e999, -0.0, 0.0, 1e308 * 10'])
      assert.equal(answer.status, 200, answer.text)
      assert.match(answer.text, /"values":\[\[1e999,-1e999,-0,0,1e999\]\]/)
      assert.deepEqual(answer.json.results[0].values[0].map(String), ['Infinity', '-Infinity', '0', '0', 'Infinity'])
      assert.ok(Object.is(answer.json.results[0].values[0][2], -0), 'JSON.parse reads -0 back')
    }
  })

  test('text holding a NUL character is stored whole, positional and named (the binding stopped at the NUL)', async () => {
    const text = 'nul\u0000inside ✓'
    const written = await call('POST', `${cluster.master.url}/db/execute`, [
      ["INSERT INTO n(literal, form, x) VALUES ('nul', 'positional', ?)", text],
      ["INSERT INTO n(literal, form, x) VALUES ('nul', 'named', :t)", { t: text }],
    ])
    assert.equal(written.status, 200, written.text)
    await cluster.converged()
    for (const node of [cluster.master, cluster.replicas[0]!]) {
      const answer = await call('POST', `${node.url}/db/query?level=none`, ["SELECT hex(x), typeof(x) FROM n WHERE literal = 'nul' ORDER BY id"])
      assert.deepEqual(answer.json.results[0].values, [[Buffer.from(text).toString('hex').toUpperCase(), 'text'], [Buffer.from(text).toString('hex').toUpperCase(), 'text']], answer.text)
    }
  })

  test('every node holds the same bytes', async () => {
    await waitFor(async () => {
      const [a, b] = await Promise.all([cluster.master, cluster.replicas[0]!].map(async (n) => (await call('GET', `${n.url}/db/checksum`)).json))
      return a.lsn === b.lsn && a.checksum === b.checksum ? true : undefined
    }, 20_000, () => 'equal checksums')
  })
})
