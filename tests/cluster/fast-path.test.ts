import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { Cluster } from '../harness/cluster.ts'
import { execute } from '../harness/http.ts'
import { schemaChangeBetweenReads } from '../harness/schema-change.ts'

/** Status, headers but the date, and the body's exact text. */
async function answer(url: string): Promise<{ status: number; headers: [string, string][]; body: string }> {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(30_000) })
  const headers = [...response.headers.entries()].filter(([name]) => name !== 'date')
  return { status: response.status, headers, body: await response.text() }
}

/**
 * POSTs `body` with a Content-Length (the fast path's writes) or chunked (the framework's):
 * status, headers but the date and the framing, and the body's text.
 */
function post(url: string, body: string, framing: 'length' | 'chunked', contentType = 'application/json'): Promise<{ status: number; headers: [string, string][]; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': contentType }
    if (framing === 'length') headers['content-length'] = String(Buffer.byteLength(body))
    const sent = request(url, { method: 'POST', headers, timeout: 30_000 }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        const kept = Object.entries(response.headers).filter(([name]) => name !== 'date' && name !== 'transfer-encoding') as [string, string][]
        resolve({ status: response.statusCode!, headers: kept.sort(), body: Buffer.concat(chunks).toString() })
      })
    })
    sent.on('error', reject)
    if (framing === 'chunked') sent.write(body.slice(0, 1))
    sent.end(framing === 'chunked' ? body.slice(1) : body)
  })
}

describe('requests answered without the framework', () => {
  let cluster: Cluster
  before(async () => {
    // No read threads: every read is run on the main thread, so every plain GET /db/query that
    // the node answers itself takes the fast path, and the test knows which ones do. No HTTP
    // workers either: they would answer some of the reads (http-workers.test.ts tests them).
    const args = ['--read-threads', '0', '--http-workers', '1']
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

  const fast = async (url: string) => (await cluster.status(url))['http'] as { fast_reads: number; fast_writes: number }
  const fastReads = async (url: string) => (await fast(url)).fast_reads

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
    test(`reads on the ${role}: the same status, headers and bytes as the framework's answer`, async () => {
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

  test('reads: the master answers weak reads itself; a replica forwards them, and the framework answers every other case', async () => {
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
    // A GET with an empty body (Content-Length: 0, as some clients send) qualifies.
    const emptyBody = await new Promise<number>((resolve, reject) => {
      request(`${replica}/db/query?level=none&q=${q}`, { headers: { 'content-length': '0' } }, (response) => {
        response.resume()
        response.on('end', () => resolve(response.statusCode!))
      }).on('error', reject).end()
    })
    assert.equal(emptyBody, 200)
    assert.equal(await fastReads(replica), replicaBefore + 1, 'an empty body is no body')
    const pretty = await answer(`${replica}/db/query?level=none&pretty&q=${q}`)
    assert.equal(pretty.status, 200)
    assert.equal(await fastReads(replica), replicaBefore + 1, 'none of the others on the fast path')
  })

  test('SELECT * read again after ADD COLUMN, RENAME COLUMN and a table made anew names the new columns and types (main thread)', async () => {
    await schemaChangeBetweenReads(cluster)
  })

  /** Bodies whose answer does not depend on when they run (nothing changes, so the LSN stays). */
  const writes: [string, string, string?][] = [
    ['', '["SELECT * FROM missing"]'],
    ['', '[["INSERT INTO kv (id, v) VALUES (?, ?)", 1, "taken"]]'],
    ['transaction&', '["UPDATE kv SET v = v WHERE id = 999", "SELECT nothing FROM nowhere"]'],
    ['', '["UPDATE kv SET v = \'same\' WHERE id = 999"]'],
    ['', '{"not": "an array"}'],
    ['', '[]'],
    ['', '[1, 2'],
    ['', '["ATTACH DATABASE \'/tmp/x.db\' AS x"]'],
    ['', 'SELECT 1', 'text/plain'],
    ['level=bogus&', '["SELECT 1"]'],
  ]

  test('writes on the master: the same status, headers and bytes as the framework answers', async () => {
    const url = cluster.master.url
    for (const [flags, body, contentType] of writes) {
      const before = await fast(url)
      const quick = await post(`${url}/db/execute?${flags}`, body, 'length', contentType)
      const framed = await post(`${url}/db/execute?${flags}`, body, 'chunked', contentType)
      const after = await fast(url)
      // A query string the framework refuses is left to it, body unread.
      assert.equal(after.fast_writes, before.fast_writes + (flags.startsWith('level=bogus') ? 0 : 1), `${flags}${body}`)
      assert.deepEqual(quick, framed, `${flags}${body}`)
    }
    assert.equal((await post(`${url}/db/execute?level=bogus`, '["SELECT 1"]', 'length')).status, 400)
  })

  test('a write that changes rows: the same answer but for its own LSN and row id', async () => {
    const url = cluster.master.url
    const body = '[["INSERT INTO kv (v) VALUES (?)", "new"]]'
    const quick = await post(`${url}/db/execute`, body, 'length')
    const framed = await post(`${url}/db/execute`, body, 'chunked')
    const parsed = [JSON.parse(quick.body), JSON.parse(framed.body)] as { results: { last_insert_id: number; rows_affected: number }[]; lsn: number }[]
    assert.equal(parsed[1]!.lsn, parsed[0]!.lsn + 1)
    assert.equal(parsed[1]!.results[0]!.last_insert_id, parsed[0]!.results[0]!.last_insert_id + 1)
    assert.deepEqual(parsed.map((p) => p.results[0]!.rows_affected), [1, 1])
    const without = (headers: [string, string][]) => headers.filter(([name]) => name !== 'x-tandem-lsn' && name !== 'content-length')
    assert.deepEqual(without(quick.headers), without(framed.headers))
    assert.deepEqual([quick.status, framed.status], [200, 200])
  })

  test('a replica leaves writes to the framework, which forwards them', async () => {
    const replica = cluster.replicas[0]!.url
    const before = await fast(replica)
    const forwarded = await post(`${replica}/db/execute`, '["UPDATE kv SET v = v WHERE id = 999"]', 'length')
    assert.equal(forwarded.status, 200)
    assert.equal((await fast(replica)).fast_writes, before.fast_writes)
  })
})
