import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster } from '../harness/cluster.ts'
import { execute } from '../harness/http.ts'

/** Status, headers but the date, and the body's exact text. */
async function answer(url: string): Promise<{ status: number; headers: [string, string][]; body: string }> {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(30_000) })
  const headers = [...response.headers.entries()].filter(([name]) => name !== 'date')
  return { status: response.status, headers, body: await response.text() }
}

describe('point reads answered without the framework', () => {
  let cluster: Cluster
  before(async () => {
    // No read threads: every read is run on the main thread, so every plain GET /db/query that
    // the node answers itself takes the fast path, and the test knows which ones do.
    const args = ['--read-threads', '0']
    cluster = await Cluster.start({ replicas: 1, masterArgs: args, replicaArgs: args })
    const ok = await execute(cluster.master.url, [
      'CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT, big INTEGER, b BLOB, r REAL)',
      ["INSERT INTO kv VALUES (1, 'one', 9223372036854775807, x'00ff10', 1.5)"],
      ["INSERT INTO kv VALUES (2, 'žluťoučký \"kůň\"\n', -9223372036854775808, NULL, NULL)"],
    ])
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    await cluster.converged()
  })
  after(async () => {
    await cluster.stop()
  })

  const fastReads = async (url: string) => ((await cluster.status(url))['http'] as { fast_reads: number }).fast_reads

  /** Query strings (before q) and SQL: rows, flags, expressions, in-band errors, several statements. */
  const cases: [string, string][] = [
    ['', 'SELECT * FROM kv ORDER BY id'],
    ['associative&', 'SELECT * FROM kv ORDER BY id'],
    ['blob_array&', 'SELECT b FROM kv ORDER BY id'],
    ['transaction&', 'SELECT v, big FROM kv WHERE id = 2'],
    ['', "SELECT 1 AS one, 'x' || v AS two, count(*) FROM kv"],
    ['', 'SELECT * FROM missing'],
    ['', "INSERT INTO kv(v) VALUES ('not here')"],
    ['', 'SELECT 1; SELECT 2'],
  ]

  for (const role of ['master', 'replica'] as const) {
    test(`on the ${role}: the same status, headers and bytes as the framework's answer`, async () => {
      const url = role === 'master' ? cluster.master.url : cluster.replicas[0]!.url
      for (const [flags, sql] of cases) {
        const q = encodeURIComponent(sql)
        const before = await fastReads(url)
        const quick = await answer(`${url}/db/query?level=none&${flags}q=${q}`)
        assert.equal(await fastReads(url), before + 1, `${flags}${sql}: answered without the framework`)
        // freshness makes the framework take the request (and changes nothing for this read).
        const framed = await answer(`${url}/db/query?level=none&freshness=1h&${flags}q=${q}`)
        assert.equal(await fastReads(url), before + 1, `${flags}${sql}: with freshness, by the framework`)
        assert.deepEqual(quick, framed, `${flags}${sql}`)
      }
    })
  }

  test('the master answers weak reads itself; a replica forwards them, and the framework answers every other case', async () => {
    const master = cluster.master.url
    const replica = cluster.replicas[0]!.url
    const q = encodeURIComponent('SELECT v FROM kv WHERE id = 1')
    const masterBefore = await fastReads(master)
    const weak = await answer(`${master}/db/query?q=${q}`)
    assert.equal(weak.status, 200)
    assert.equal(await fastReads(master), masterBefore + 1)

    const replicaBefore = await fastReads(replica)
    const forwarded = await answer(`${replica}/db/query?q=${q}`)
    assert.equal(forwarded.status, 200)
    assert.equal(forwarded.body, weak.body)
    const bogus = await answer(`${replica}/db/query?level=bogus&q=${q}`)
    assert.equal(bogus.status, 400)
    assert.match(bogus.body, /"code":"BAD_REQUEST"/)
    const empty = await answer(`${replica}/db/query?level=none&q=%20`)
    assert.equal(empty.status, 400)
    const pretty = await answer(`${replica}/db/query?level=none&pretty&q=${q}`)
    assert.equal(pretty.status, 200)
    assert.equal(await fastReads(replica), replicaBefore, 'none of these on the fast path')
  })
})
